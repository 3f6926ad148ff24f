"""Where backbone weights come from: the torch hub cache, local checkpoints, content hashes.

avlab never downloads. Published weights (torchvision's ImageNet ResNets) are looked up in the
torch hub cache, ``torch.hub.get_dir()/checkpoints/<file name from the URL>``, the same file
``torch.hub.load_state_dict_from_url`` would have written; when it is missing the error says
which file to put in which folder. Local checkpoints are read with
``torch.load(..., weights_only=True)``, so loading one never runs code from the file.

Weights are identified by the sha256 of the file's bytes, never by its path: two copies of one
checkpoint give the same features, so they must give the same store fingerprint.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import torch

from avlab.errors import WeightsError, WeightsNotFoundError

__all__ = ["HubWeights", "file_sha256", "match_state_dict", "read_state_dict"]

# Keys under which training scripts nest the state dict (Lightning, DINO, MoCo, ...).
_CONTAINER_KEYS = ("state_dict", "model", "backbone")
# Prefixes of whole-model checkpoints, tried in order; the one matching most keys wins.
_PREFIXES = (
    "",
    "module.",
    "backbone.",
    "module.backbone.",
    "model.backbone.",
    "backbone.body.",
    "model.",
    "encoder.",
)
# Keys listed in an error message, per kind of mismatch.
_SHOWN = 5


@dataclass(frozen=True)
class HubWeights:
    """Published weights that torch hub would cache under the file name in their URL.

    Attributes:
        url: Where the file is published (only named in error messages, never fetched).

    Example:
        >>> hub = HubWeights("https://download.pytorch.org/models/resnet18-f37072fd.pth")
        >>> hub.file_name
        'resnet18-f37072fd.pth'
        >>> hub.path.parent.name
        'checkpoints'
    """

    url: str

    @property
    def file_name(self) -> str:
        """The file name torch hub gives the download: the last part of the URL's path."""
        return os.path.basename(urlparse(self.url).path)

    @property
    def folder(self) -> Path:
        """``torch.hub.get_dir()/checkpoints``, read at each call (it follows ``TORCH_HOME``)."""
        return Path(torch.hub.get_dir()) / "checkpoints"

    @property
    def path(self) -> Path:
        """Where the file is expected: `folder` / `file_name`."""
        return self.folder / self.file_name

    def require(self, what: str = "weights") -> Path:
        """The cached file's path, or an error that says which file to put where.

        Args:
            what: What the weights are, for the message (e.g. "ImageNet weights of resnet18").

        Raises:
            WeightsNotFoundError: The file is not in the hub cache.

        Example:
            >>> try:
            ...     HubWeights("https://example.org/w/net-0123abcd.pth").require()
            ... except WeightsNotFoundError as error:
            ...     print("'net-0123abcd.pth'" in str(error), "example.org" in str(error))
            True True
        """
        path = self.path
        if not path.is_file():
            raise WeightsNotFoundError(
                path,
                f"{what} not found, and avlab never downloads. Put the file {self.file_name!r} "
                f"(from {self.url}) in the folder {str(self.folder)!r}, which is "
                "torch.hub.get_dir()/checkpoints (set TORCH_HOME to use another folder).",
            )
        return path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, as hex; cached per (path, size, modification time).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "w.bin"
        ...     _ = path.write_bytes(b"abc")
        ...     file_sha256(path)[:16]
        'ba7816bf8f01cfea'
    """
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise WeightsNotFoundError(path, "weights file not found") from None
    return _sha256(str(resolved), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime_ns are part of the cache key only: a rewritten file is hashed again.
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a checkpoint's tensors, unwrapping the usual containers.

    Accepts a bare state dict, or a dict holding one under "state_dict", "model" or "backbone"
    (nested containers are unwrapped too). Loads with ``weights_only=True`` on the CPU.

    Raises:
        WeightsNotFoundError: The file does not exist.
        WeightsError: The file cannot be read safely, or holds no state dict.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = Path(folder) / "ckpt.pt"
        ...     torch.save({"epoch": 3, "state_dict": {"w": torch.zeros(2)}}, path)
        ...     sorted(read_state_dict(path))
        ['w']
    """
    if not Path(path).is_file():
        raise WeightsNotFoundError(path, "weights file not found")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors alike
        raise WeightsError(
            path, f"cannot be read with torch.load(weights_only=True): {error}"
        ) from error
    for _ in range(4):
        if _is_state_dict(content):
            return dict(content)
        if not isinstance(content, Mapping):
            break
        inner = next((content[key] for key in _CONTAINER_KEYS if key in content), None)
        if inner is None:
            break
        content = inner
    found = sorted(map(str, content))[:_SHOWN] if isinstance(content, Mapping) else []
    raise WeightsError(
        path,
        "holds no state dict (a dict of tensors, bare or under one of the keys "
        f"{list(_CONTAINER_KEYS)}); found {type(content).__name__}"
        + (f" with keys {found}" if found else ""),
    )


def _is_state_dict(content: object) -> bool:
    return (
        isinstance(content, Mapping)
        and len(content) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in content.items())
    )


def match_state_dict(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Size | tuple[int, ...]],
    *,
    source: str | os.PathLike[str],
    ignored: Iterable[str] = (),
    optional: Iterable[str] = (),
) -> dict[str, torch.Tensor]:
    """Pick the tensors of `state` that fill `expected`, or explain what does not fit.

    The prefix of whole-model checkpoints ("module.", "backbone.", ...) is found by trying the
    common ones and keeping the one that matches most keys; keys outside it belong to the rest
    of the model and are left out. Under it, every key must be expected or ignored.

    Args:
        state: The checkpoint's tensors.
        expected: Key -> shape the module needs.
        source: The file the tensors come from, for error messages.
        ignored: Keys the checkpoint may hold that the module drops (a classifier, deeper
            stages than requested).
        optional: Expected keys that may be missing, keeping their initial values (for
            instance the offset convs of a deformable ResNet loaded from plain ResNet weights).
            BatchNorm's ``num_batches_tracked`` is always optional.

    Returns:
        The tensors to pass to ``load_state_dict(..., strict=False)``, keyed as `expected`.

    Raises:
        WeightsError: Missing or unexpected keys, or shapes that differ; the message names a
            few of each and the file.

    Example:
        >>> state = {"module.conv.weight": torch.zeros(4, 3, 3, 3), "module.fc.weight": torch.zeros(2, 4)}
        >>> sorted(match_state_dict(state, {"conv.weight": (4, 3, 3, 3)}, source="ckpt.pt",
        ...                         ignored=["fc.weight"]))
        ['conv.weight']
    """
    ignored = set(ignored)
    optional = set(optional)
    known = set(expected) | ignored

    def score(prefix: str) -> int:
        return sum(1 for key in state if key.startswith(prefix) and key[len(prefix) :] in known)

    prefix = max(_PREFIXES, key=score)  # max keeps the first (shortest) on ties
    if prefix:
        state = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    unexpected = sorted(key for key in state if key not in known)
    missing = sorted(
        key
        for key in expected
        if key not in state and key not in optional and not key.endswith("num_batches_tracked")
    )
    wrong_shape = sorted(
        f"{key} {tuple(state[key].shape)} != {tuple(expected[key])}"
        for key in expected
        if key in state and tuple(state[key].shape) != tuple(expected[key])
    )
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            problems.append(f"{len(keys)} {label} keys: {keys[:_SHOWN]}{more}")
    if problems:
        stripped = f" after stripping the prefix {prefix!r}" if prefix else ""
        raise WeightsError(
            source, f"does not fit the model{stripped}: " + "; ".join(problems)
        )
    return {key: value for key, value in state.items() if key in expected}

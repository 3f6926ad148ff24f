"""Fuzzing with hypothesis, on a fixed, derandomized budget (about a minute in all).

Targets: the media readers (random bytes, mutated valid files), the dataset loaders that parse
text (YouTube-VIS JSON, AVSBench csv, AVE annotations), the metrics (properties, and BSS Eval
against mir_eval), and the store's schema validation. Each test counts its examples in
`EXAMPLES`, printed at the end of the session with ``-s``.
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mir_eval
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from avlab.datasets import load_ave, load_avsbench, load_youtube_vis
from avlab.errors import DatasetError, MediaError
from avlab.eval import bss_eval, mask_iou, ytvis_evaluate
from avlab.eval.avsbench import _fscore
from avlab.media import probe, read_audio, read_video
from avlab.store import StoreSchemaError, open_store
from avlab.testing import tiny_store
from avlab.testing.media import sine, write_test_video
from avlab.testing.ytvis import write_ytvis_fixture

EXAMPLES: collections.Counter[str] = collections.Counter()
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Any:
    yield
    print("\nfuzz examples run:", dict(EXAMPLES))


@functools.cache
def _scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="avlab-fuzz-"))


@functools.cache
def _valid_media() -> dict[str, bytes]:
    folder = _scratch() / "valid"
    folder.mkdir()
    mp4 = write_test_video(folder / "a.mp4", num_frames=4, fps=8, height=16, width=16, sample_rate=8000)
    sf.write(folder / "a.wav", sine(0.25, 8000), 8000)
    return {".mp4": Path(mp4).read_bytes(), ".wav": (folder / "a.wav").read_bytes()}


READERS: dict[str, Callable[[Path], object]] = {
    "probe": probe,
    "read_video": lambda path: read_video(path, fps=8, size=16),
    "read_audio": lambda path: read_audio(path, sample_rate=8000),
}


def _read_everything(path: Path) -> None:
    """Every reader either reads `path` or raises a MediaError naming it, nothing else."""
    for reader in READERS.values():
        try:
            reader(path)
        except MediaError as error:
            assert error.path == str(path)
            assert str(error).startswith(f"{path}: ")


# (a) media readers.

@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".mp4", ".wav", ".mkv", ".webm", ".avi", ".mp3"]))
def test_random_bytes_are_refused_with_a_media_error(data: bytes, suffix: str) -> None:
    EXAMPLES["media: random bytes"] += 1
    path = _scratch() / f"random{suffix}"
    path.write_bytes(data)
    _read_everything(path)


@settings(FUZZ, max_examples=80)
@given(kind=st.sampled_from([".mp4", ".wav"]), data=st.data())
def test_mutated_media_read_or_raise_a_media_error(kind: str, data: st.DataObject) -> None:
    EXAMPLES["media: mutated files"] += 1
    content = bytearray(_valid_media()[kind])
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(content) - 1), st.integers(1, 255)), max_size=8))
    for position, mask in flips:
        content[position] ^= mask
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(content))))
    path = _scratch() / f"mutated{kind}"
    path.write_bytes(bytes(content[:cut]))
    _read_everything(path)


# (b) loaders of text formats.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@functools.cache
def _ytvis() -> tuple[Path, dict[str, Any]]:
    fx = write_ytvis_fixture(_scratch() / "ytvis")
    return fx.frames_root, json.loads(fx.annotations.read_text())


def _load_ytvis(document: Any) -> None:
    """Load a YouTube-VIS document and every mask: it works or raises a DatasetError naming the JSON."""
    frames_root, _ = _ytvis()
    path = _scratch() / "fuzz.json"
    path.write_text(json.dumps(document))
    try:
        manifest = load_youtube_vis(path, frames_root)
        for record in manifest:
            if record.masks is not None:
                record.load_masks()
    except DatasetError as error:
        assert error.path in (str(path), str(frames_root)), error
        assert str(error) == f"{error.path}: {error.reason}"


@FUZZ
@given(document=JSON)
def test_random_json_is_not_a_youtube_vis_file(document: Any) -> None:
    EXAMPLES["ytvis: random JSON"] += 1
    _load_ytvis(document)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside a JSON value."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@settings(FUZZ, max_examples=120)
@given(data=st.data())
def test_near_valid_youtube_vis_files_load_or_name_the_problem(data: st.DataObject) -> None:
    EXAMPLES["ytvis: near-valid JSON"] += 1
    _, valid = _ytvis()
    document = copy.deepcopy(valid)
    # Leaves of counts strings stay out: pycocotools trusts compressed RLE strings, as the
    # official toolkits do.
    paths = [p for p in _paths(document) if "counts" not in p]
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(paths))
        parent = functools.reduce(lambda node, key: node[key], where[:-1], document)
        try:
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[where[-1]]
            else:
                parent[where[-1]] = data.draw(JSON)
        except (KeyError, IndexError, TypeError):  # an earlier edit removed or retyped the parent
            continue
    _load_ytvis(document)


@FUZZ
@given(text=st.lists(st.sampled_from([*"ab,\n\"./-_ ", "train", "val", "test", "s4vid-0", "dog", "name", "split",
                                      "category"]), max_size=40).map("".join))
def test_random_avsbench_csv_loads_or_names_the_csv(text: str) -> None:
    EXAMPLES["avsbench: random csv"] += 1
    root = _scratch() / "avsbench"
    root.mkdir(exist_ok=True)
    (root / "s4_meta_data.csv").write_text(text)
    try:
        load_avsbench(root, subset="s4")
    except DatasetError as error:
        assert error.path == str(root / "s4_meta_data.csv"), error


@FUZZ
@given(text=st.lists(st.sampled_from([*"&0123456789\n ,.-", "Church bell", "good", "bad", "-1", "Category"]),
                    max_size=50).map("".join))
def test_random_ave_annotations_load_or_name_the_file(text: str) -> None:
    EXAMPLES["ave: random annotations"] += 1
    root = _scratch() / "ave"
    root.mkdir(exist_ok=True)
    (root / "Annotations.txt").write_text(text)
    try:
        load_ave(root, on_missing="error")
    except DatasetError as error:
        assert Path(error.path).is_relative_to(root), error


# (c) metrics.

def masks(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.booleans(), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
        lambda bits: np.array(bits, bool).reshape(shape))


@settings(FUZZ, max_examples=100)
@given(pred=masks((3, 4, 5)), gt=masks((3, 4, 5)))
def test_mask_iou_is_a_symmetric_fraction(pred: np.ndarray, gt: np.ndarray) -> None:
    EXAMPLES["metrics: IoU"] += 1
    iou = mask_iou(pred, gt)
    assert iou.shape == (3,) and np.all((iou >= 0) & (iou <= 1))
    np.testing.assert_array_equal(iou, mask_iou(gt, pred))
    np.testing.assert_array_equal(mask_iou(gt, gt), np.ones(3))  # empty-empty included: 1
    inter, union = (pred & gt).sum(axis=(1, 2)), (pred | gt).sum(axis=(1, 2))
    np.testing.assert_allclose(iou, np.where(union == 0, 1.0, inter / np.maximum(union, 1)))


@settings(FUZZ, max_examples=100)
@given(true_positives=st.integers(0, 50), extra_predicted=st.integers(0, 50), extra_actual=st.integers(0, 50))
def test_fscore_is_a_fraction_and_perfect_only_when_exact(true_positives: int, extra_predicted: int,
                                                          extra_actual: int) -> None:
    EXAMPLES["metrics: F-score"] += 1
    f = float(_fscore(np.array([true_positives]), np.array([true_positives + extra_predicted]),
                      np.array([true_positives + extra_actual]))[0])
    assert 0.0 <= f <= 1.0 + 1e-12
    if true_positives and not extra_predicted and not extra_actual:
        assert f == pytest.approx(1.0)
    if not true_positives:
        assert f == 0.0


# mir_eval takes about a second per example (and shrinking a failure takes minutes: off). Every
# estimate has noise and cross-talk: without them SDR or SIR is round-off over round-off
# (150 to 300 dB), defined by neither implementation.
@settings(FUZZ, max_examples=6, phases=[Phase.explicit, Phase.generate])
@given(seed=st.integers(0, 2**32 - 1), num_sources=st.integers(1, 3), mix=st.floats(0.05, 0.9))
def test_bss_eval_agrees_with_mir_eval(seed: int, num_sources: int, mix: float) -> None:
    EXAMPLES["metrics: bss_eval vs mir_eval"] += 1
    rng = np.random.default_rng(seed)
    references = rng.standard_normal((num_sources, 2048))  # longer than N x 512 filter taps
    crosstalk = np.eye(num_sources) + rng.uniform(0.05, 0.5, (num_sources, num_sources)) * (1 - np.eye(num_sources))
    estimates = crosstalk @ references + mix * rng.standard_normal((num_sources, 2048))
    ours = bss_eval(references, estimates, compute_permutation=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "mir_eval.separation.bss_eval_sources", FutureWarning)
        sdr, sir, sar, perm = mir_eval.separation.bss_eval_sources(references, estimates, compute_permutation=True)
    np.testing.assert_allclose(ours["sdr"], sdr, atol=1e-6)
    np.testing.assert_allclose(ours["sar"], sar, atol=1e-6)
    np.testing.assert_allclose(ours["sir"], sir, atol=1e-6)  # +inf for one source, on both sides
    np.testing.assert_array_equal(ours["perm"], perm)
    # Shuffling the estimates changes the assignment, not the scores.
    order = rng.permutation(num_sources)
    shuffled = bss_eval(references, estimates[order], compute_permutation=True)
    for name in ("sdr", "sir", "sar"):
        np.testing.assert_allclose(shuffled[name], ours[name], atol=1e-9)
    np.testing.assert_array_equal(order[shuffled["perm"]], ours["perm"])


def _rle(mask: np.ndarray) -> dict[str, Any]:
    from avlab.testing.ytvis import uncompressed_rle

    return uncompressed_rle(mask)


@settings(FUZZ, max_examples=20)
@given(tracks=st.lists(masks((3, 6, 6)), min_size=1, max_size=3), scores=st.data())
def test_ytvis_ap_is_a_fraction_and_one_for_the_ground_truth(tracks: list[np.ndarray], scores: st.DataObject) -> None:
    EXAMPLES["metrics: YouTube-VIS AP"] += 1
    tracks = [t for t in tracks if t.any()] or [np.ones((3, 6, 6), bool)]
    gt = {"videos": [{"id": 1, "height": 6, "width": 6, "length": 3}],
          "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": k + 1, "video_id": 1, "category_id": 1, "iscrowd": 0,
                           "segmentations": [_rle(frame.astype(np.uint8)) if frame.any() else None for frame in track]}
                          for k, track in enumerate(tracks)]}
    perfect = [{"video_id": 1, "category_id": 1, "score": scores.draw(st.floats(0.01, 1.0)),
                "segmentations": track.astype(np.uint8)} for track in tracks]
    stats = ytvis_evaluate(gt, perfect)
    assert stats["AP"] == pytest.approx(1.0) and stats["AP50"] == pytest.approx(1.0)
    assert all(value == -1.0 or 0.0 <= value <= 1.0 for value in stats.values())
    shuffled = [{**r, "segmentations": np.roll(r["segmentations"], 2, axis=-1)} for r in perfect]
    assert all(value == -1.0 or 0.0 <= value <= 1.0 for value in ytvis_evaluate(gt, shuffled).values())


# (d) the store's schema validation.

@functools.cache
def _valid_store() -> Path:
    return Path(tiny_store(_scratch() / "valid-store").encoding["source"])


def _open_mutated(mutate: Callable[[dict[str, Any]], Any]) -> StoreSchemaError | None:
    """Copy the valid store, change its root attributes, open it: it opens or names the problem."""
    store = _scratch() / "mutated.zarr"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(_valid_store(), store)
    metadata = json.loads((store / "zarr.json").read_text())
    mutate(metadata["attributes"])
    (store / "zarr.json").write_text(json.dumps(metadata))
    try:
        ds = open_store(store)
    except StoreSchemaError as error:
        assert error.path == str(store) and str(error).startswith(f"{store}: ")
        return error
    # Opened: everything the accessor reports reads.
    assert isinstance(ds.avlab.recipe, dict) and isinstance(ds.avlab._repr_html_(), str)
    assert set(ds.avlab.failures) <= set(ds.video.values) and set(ds.avlab.levels) <= set(ds.avlab.attrs["levels"])
    return None


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_mutated_store_attributes_open_or_raise_a_schema_error(data: st.DataObject) -> None:
    EXAMPLES["store: mutated attributes"] += 1
    keys = ["schema_version", "recipe", "fingerprint", "versions", "dataset", "views", "levels", "encoding",
            "sealed", "categories"]
    edits = data.draw(st.lists(st.tuples(st.sampled_from(keys), st.booleans(), JSON), min_size=1, max_size=3))

    def mutate(attributes: dict[str, Any]) -> None:
        avlab = attributes["avlab"]
        for key, drop, value in edits:
            if drop:
                avlab.pop(key, None)
            else:
                avlab[key] = value

    _open_mutated(mutate)


@FUZZ
@given(value=JSON)
def test_random_avlab_attributes_open_or_raise_a_schema_error(value: Any) -> None:
    EXAMPLES["store: random attributes"] += 1
    _open_mutated(lambda attributes: attributes.__setitem__("avlab", value))


@FUZZ
@given(version=JSON)
def test_any_other_schema_version_is_named(version: Any) -> None:
    EXAMPLES["store: schema versions"] += 1

    def mutate(attributes: dict[str, Any]) -> None:
        attributes["avlab"]["schema_version"] = version

    error = _open_mutated(mutate)
    if version == 1 and type(version) is int:
        assert error is None
    else:
        assert error is not None and "this avlab reads version 1" in error.reason

"""Security: no code runs from data files, ids never become paths, nothing reaches the network.

(a) a static scan of avlab's source for every unpickling, ``torch.load``, ``np.load``,
``yaml.load``, ``eval``/``exec`` and ``shell=True``; (b) hostile pickles and checkpoints that
would create a marker file when unpickled; (c) hostile video ids cached into a store; (d) the
JupyterLab test server's command line; (e) a whole run with the network cut.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import avlab
from avlab.datasets.avsbench import load_avsbench, load_avsbench_log_mel
from avlab.datasets.manifest import Manifest
from avlab.datasets.synth import generate, load_synth
from avlab.errors import DatasetError, WeightsError, WeightsNotFoundError
from avlab.models import create_system, load_system, save_system
from avlab.store import cache_features, open_store
from avlab.store.schema import VIDEO_ID
from avlab.testing.layouts import write_avsbench_s4

PACKAGE = Path(avlab.__file__).parent


# ---- (a) static scan ------------------------------------------------------------------------


@functools.cache
def all_calls() -> list[tuple[Path, ast.Call, str]]:
    """Every call in avlab's source: (file, call, callee as written)."""
    return [(path, node, ast.unparse(node.func)) for path in sorted(PACKAGE.rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))) if isinstance(node, ast.Call)]


def calls(name: str) -> list[tuple[Path, ast.Call]]:
    """Every call whose callee is `name` or ends with ``.name`` (``torch.load``, ``pickle.load``, ...)."""
    return [(path, call) for path, call, callee in all_calls() if callee == name or callee.endswith("." + name)]


def keyword(call: ast.Call, name: str) -> str | None:
    return next((ast.unparse(k.value) for k in call.keywords if k.arg == name), None)


def where(path: Path, call: ast.Call) -> str:
    return f"{path.relative_to(PACKAGE.parent)}:{call.lineno}"


def test_every_torch_load_is_weights_only() -> None:
    loads = calls("torch.load")
    assert loads, "the scan found no torch.load at all: is it looking in the right place?"
    assert [where(p, c) for p, c in loads if keyword(c, "weights_only") != "True"] == []


def test_pickles_are_read_only_in_avsbench_behind_the_opt_in() -> None:
    unpickling = [(p, c) for name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load",
                                      "joblib.load", "cloudpickle.load", "pd.read_pickle", "pandas.read_pickle")
                  for p, c in calls(name)]
    assert [where(p, c) for p, c in unpickling] == [where(p, c) for p, c in unpickling
                                                      if p.name == "avsbench.py"]
    assert len(unpickling) == 1
    # The one unpickling follows the consent check in the same function.
    source = (PACKAGE / "datasets/avsbench.py").read_text()
    body = source[source.index("def load_avsbench_log_mel"):source.index("pickle.load(")]
    assert "if not (allow_pickle" in body and "refusing to unpickle" in body


def test_np_load_never_allows_pickles() -> None:
    assert [where(p, c) for p, c in calls("np.load") + calls("numpy.load")
            if keyword(c, "allow_pickle") not in (None, "False")] == []


def test_no_yaml_load_eval_exec_or_shell() -> None:
    unsafe_yaml = [where(p, c) for p, c in calls("yaml.load") + calls("yaml.unsafe_load") + calls("yaml.full_load")]
    assert unsafe_yaml == []
    builtins = [where(p, c) for name in ("eval", "exec", "__import__", "compile") for p, c in calls(name)
                if isinstance(c.func, ast.Name)]  # model.eval() is a method, not the builtin
    assert builtins == []
    shells = [where(p, c) for name in ("subprocess.run", "subprocess.Popen", "subprocess.call",
                                       "subprocess.check_call", "subprocess.check_output")
              for p, c in calls(name) if keyword(c, "shell") not in (None, "False")]
    assert shells == [] and calls("os.system") == [] and calls("os.popen") == []


# ---- (b) hostile pickles and checkpoints ------------------------------------------------------


class Payload:
    """Unpickling this runs ``touch {marker}``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_avsbench_pickle_never_runs_without_consent(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    root = write_avsbench_s4(tmp_path / "avsbench", num_videos=2, wav=False, log_mel=True)
    for path in root.rglob("*.pkl"):
        path.write_bytes(pickle.dumps(Payload(marker)))
    clips = load_avsbench(root)
    for clip in clips:
        clip.load_frames()
        with pytest.raises(DatasetError) as caught:
            load_avsbench_log_mel(clip)
        assert caught.value.path == os.fspath(clip.extra["log_mel_path"])
        assert "refusing to unpickle" in caught.value.reason and "allow_pickle=True" in caught.value.reason
    assert not marker.exists()
    # The control: the payload works, so its absence above means it was never unpickled.
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.fixture()
def hostile_checkpoint(tmp_path: Path) -> tuple[Path, Path]:
    """A checkpoint whose state dict holds a payload: (file, marker it would create)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "hostile.ckpt"
    model = create_system("visual_only", channels=(8, 16, 32), fpn_width=8, hidden_dim=8)
    save_system(model, path)
    data = torch.load(path, weights_only=True)
    data["state_dict"]["system.trap"] = Payload(marker)
    torch.save(data, path)
    return path, marker


def test_a_hostile_checkpoint_is_refused_by_load_system(hostile_checkpoint: tuple[Path, Path]) -> None:
    path, marker = hostile_checkpoint
    with pytest.raises(WeightsError) as caught:
        load_system(path)
    assert caught.value.path == os.fspath(path) and "weights_only=True" in caught.value.reason
    assert not marker.exists()


def test_a_hostile_checkpoint_is_refused_by_fit_init_from(hostile_checkpoint: tuple[Path, Path],
                                                          tmp_path: Path) -> None:
    from avlab.testing import tiny_store
    from avlab.train import fit

    path, marker = hostile_checkpoint
    store = tiny_store(tmp_path / "store")
    with pytest.raises(WeightsError) as caught:
        fit(store, "visual_only", system_kwargs={"fpn_width": 8, "hidden_dim": 8}, val_split=None, max_epochs=1,
            batch_size=4, progress=False, root_dir=tmp_path / "runs", init_from=path)
    assert caught.value.path == os.fspath(path)
    assert not marker.exists()


def test_hostile_backbone_weights_are_refused(hostile_checkpoint: tuple[Path, Path]) -> None:
    from avlab.backbones import visual_bundle

    path, marker = hostile_checkpoint
    with pytest.raises(WeightsError) as caught:
        visual_bundle("debug").load(path)
    assert caught.value.path == os.fspath(path)
    assert not marker.exists()


# ---- (c) hostile video ids --------------------------------------------------------------------

HOSTILE_IDS = ["../../escaped", "/tmp/absolute-id", "nul\x00byte", "ünïcødé ✓", "with space/and slash"]


def snapshot(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def test_hostile_video_ids_stay_data_inside_the_store(tmp_path: Path) -> None:
    root = generate(tmp_path / "synth", num_videos={"train": len(HOSTILE_IDS)}, size=32, fps=4, seconds=1.0,
                    renderer="additive", splits=["train"], num_solo=0)
    synth = load_synth(root, split="train")
    hostile = Manifest([dataclasses.replace(record, video_id=name) for record, name in zip(synth, HOSTILE_IDS,
                                                                                            strict=True)],
                       name="hostile", root=root)
    before = snapshot(tmp_path)
    store = tmp_path / "store.zarr"
    cache_features(hostile, store, visual="debug", size=32, progress=False)
    new = snapshot(tmp_path) - before
    assert new and all(p == store or store in p.parents for p in new), sorted(map(str, new - {store}))[:5]
    assert not Path("/tmp/absolute-id").exists()
    assert sorted(open_store(store)[VIDEO_ID].values.tolist()) == sorted(HOSTILE_IDS)


# ---- (d) the browser tests' JupyterLab --------------------------------------------------------


def test_jupyterlab_fixture_binds_localhost_with_a_token() -> None:
    source = (Path(__file__).parent / "browser/conftest.py").read_text()
    tree = ast.parse(source)
    command = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "command" for t in node.targets))
    assert isinstance(command.value, ast.List)
    arguments = [ast.unparse(element) for element in command.value.elts]
    assert "'--ip=127.0.0.1'" in arguments
    assert "f'--IdentityProvider.token={token}'" in arguments
    assert "token = secrets.token_hex(24)" in source  # random, 192 bits
    assert not any("token=''" in a or "password" in a.lower() or "0.0.0.0" in a for a in arguments)


# ---- (e) no network at run time ----------------------------------------------------------------

OFFLINE_RUN = textwrap.dedent("""
    import socket, sys
    def refuse(*args, **kwargs):
        raise RuntimeError(f"network access: {args!r}")
    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.getaddrinfo = socket.create_connection = refuse

    import torch
    torch.set_num_threads(1)
    from pathlib import Path
    from avlab import evaluate, fit
    from avlab.backbones import visual_bundle
    from avlab.datasets.synth import generate
    from avlab.errors import WeightsNotFoundError
    from avlab.store import cache_features

    tmp = Path(sys.argv[1])
    root = generate(tmp / "synth", num_videos={"train": 4, "val": 2}, size=32, fps=4, seconds=1.0,
                    renderer="additive", splits=["train", "val"], num_solo=0)
    store = cache_features(root, tmp / "store.zarr", visual="debug", size=32, progress=False)
    result = fit(store, "visual_only", system_kwargs={"fpn_width": 8, "hidden_dim": 8}, max_epochs=1,
                 batch_size=4, progress=False, root_dir=tmp / "runs")
    # Scoring reads the store's ground truth; the oracle stands in for a predictor.
    scores = evaluate(lambda item: (item["mask"].float() * 10 - 5).numpy(), store, split="val")
    assert result.checkpoint.is_file() and scores.attrs["summary"]
    try:
        visual_bundle("resnet18").load("imagenet")
    except WeightsNotFoundError as error:
        print("missing:", error)
    print("done", type(scores).__name__)
""")


def test_a_whole_run_needs_no_network(tmp_path: Path) -> None:
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home")}
    done = subprocess.run([sys.executable, "-c", OFFLINE_RUN, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "network access" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("done")
    # The missing ImageNet weights: which file, where to put it, where it comes from.
    missing = next(line for line in lines if line.startswith("missing:"))
    assert str(tmp_path / "torch-home" / "hub" / "checkpoints") in missing and "resnet18" in missing
    assert "https://download.pytorch.org/models/" in missing


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avlab.backbones import visual_bundle

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as caught:
        visual_bundle("resnet18").load("imagenet")
    assert Path(caught.value.path).parent == tmp_path / "hub" / "checkpoints"
    assert "never downloads" in caught.value.reason
    assert not list(tmp_path.rglob("*.pth"))  # nothing fetched

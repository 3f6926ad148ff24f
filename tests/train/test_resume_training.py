"""A run SIGKILLed mid-training and resumed ends with the weights of one never interrupted.

The killed runs are real subprocesses running `avlab.fit` that kill themselves (SIGKILL, no
clean-up of any kind) at the start of a chosen step; `fit(resume=...)` then continues them
in their own run folder. AViS-Net (tiny) with solo clips exercises the shuffled order, the
cached-view and mix-and-separate draws, and the transformer's dropout. 28 items in batches
of 4: 7 steps an epoch, 2 epochs, a checkpoint every 2 steps and at each epoch's end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch

from avlab.errors import WeightsError, WeightsNotFoundError
from avlab.models import system_preset
from avlab.train import fit
from avlab.train.resume import atomic_save, last_checkpoint

SETTINGS: dict[str, Any] = {"max_epochs": 2, "batch_size": 4, "separation_eval_items": 2, "progress": False,
                            "checkpoint_every_n_steps": 2, "seed": 3}

KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    import pytorch_lightning as pl
    import torch
    from avlab.models import system_preset
    from avlab.train import fit

    torch.set_num_threads(1)  # as the test process: the same float sums
    config = json.loads(sys.argv[1])

    class KillAt(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == config["kill_at"]:
                os.kill(os.getpid(), signal.SIGKILL)

    fit(config["store"], "avisnet", system_kwargs=system_preset("avisnet", "tiny"), solo_store=config["solo"],
        root_dir=config["root"], resume=config["resume"], callbacks=[KillAt()], **config["settings"])
""")


def run_killed(mix_store: Path, solo_store: Path, root: Path, kill_at: int, *, resume: str | None = None) -> None:
    """Run fit in a subprocess that SIGKILLs itself when `kill_at` steps are done."""
    config = {"store": str(mix_store), "solo": str(solo_store), "root": str(root), "kill_at": kill_at,
              "resume": resume, "settings": SETTINGS}
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, json.dumps(config)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]


def train(mix_store: Path, solo_store: Path, root: Path, **options: Any) -> Any:
    return fit(mix_store, "avisnet", system_kwargs=system_preset("avisnet", "tiny"), solo_store=solo_store,
               root_dir=root, **SETTINGS, **options)


def assert_same_weights(result: Any, reference: dict[str, torch.Tensor]) -> None:
    weights = result.system.state_dict()
    assert weights.keys() == reference.keys()
    different = [key for key in reference if not torch.equal(weights[key], reference[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def reference(mix_store: Path, solo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    """The uninterrupted run's final weights."""
    result = train(mix_store, solo_store, tmp_path_factory.mktemp("uninterrupted"))
    assert result.checkpoint.name == "epoch=1-step=14.ckpt"
    return {key: value.clone() for key, value in result.system.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize(("kills", "resumed_from", "resume"), [
    ([3], ["epoch=0-step=2.ckpt"], "last"),  # mid-epoch 1: step 3 is lost and redone
    ([7], ["epoch=0-step=7.ckpt"], "run folder"),  # at the epoch boundary, after epoch 1's checkpoint
    ([11], ["epoch=1-step=10.ckpt"], "checkpoint file"),  # mid-epoch 2
    ([5, 12], ["epoch=0-step=4.ckpt", "epoch=1-step=12.ckpt"], "last"),  # killed again after resuming
], ids=["mid-epoch-1", "epoch-boundary", "mid-epoch-2", "killed-twice"])
def test_killed_run_resumes_to_the_uninterrupted_weights(kills: list[int], resumed_from: list[str], resume: str,
                                                         mix_store: Path, solo_store: Path,
                                                         reference: dict[str, torch.Tensor], tmp_path: Path) -> None:
    run_dir = tmp_path / "avisnet" / "version_0"
    for number, (kill_at, expected) in enumerate(zip(kills, resumed_from, strict=True)):
        run_killed(mix_store, solo_store, tmp_path, kill_at, resume="last" if number else None)
        assert last_checkpoint(run_dir).name == expected
    where = {"last": "last", "run folder": run_dir, "checkpoint file": last_checkpoint(run_dir)}[resume]
    result = train(mix_store, solo_store, tmp_path, resume=where)
    assert_same_weights(result, reference)
    # Resumed in its own folder: no second run; Lightning keeps the checkpoints resumed from.
    assert sorted(p.name for p in (tmp_path / "avisnet").iterdir()) == ["version_0"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == sorted(
        {*resumed_from, "epoch=1-step=14.ckpt"})
    assert result.log_dir == run_dir and result.checkpoint == run_dir / "checkpoints/epoch=1-step=14.ckpt"
    assert result.loss_curve.is_file()


def test_a_corrupt_last_checkpoint_is_refused_naming_the_file(mix_store: Path, solo_store: Path,
                                                              tmp_path: Path) -> None:
    # Chosen: refuse, not fall back to an older checkpoint. Writes are atomic, so a kill
    # cannot leave a torn checkpoint: a corrupt one means something else went wrong (disk,
    # copy, hand edit), and quietly training from older weights would hide it.
    checkpoint = train(mix_store, solo_store, tmp_path, max_steps=2).checkpoint
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    with pytest.raises(WeightsError) as caught:
        train(mix_store, solo_store, tmp_path, resume="last")
    assert caught.value.path == os.fspath(checkpoint)
    assert str(caught.value).startswith(f"{checkpoint}: cannot be read with torch.load(weights_only=True)")


def test_resume_needs_a_training_checkpoint(mix_store: Path, solo_store: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        train(mix_store, solo_store, tmp_path, resume="last")
    assert caught.value.path == os.fspath(tmp_path / "avisnet")
    (tmp_path / "avisnet/version_0/checkpoints").mkdir(parents=True)
    with pytest.raises(WeightsNotFoundError, match="no checkpoint to resume from"):
        train(mix_store, solo_store, tmp_path, resume="last")
    # Weights alone (save_system's file) start new runs (init_from), they do not resume one.
    weights = tmp_path / "avisnet/version_0/checkpoints/epoch=0-step=1.ckpt"
    torch.save({"hyper_parameters": {}, "state_dict": {"w": torch.zeros(1)}}, weights)
    with pytest.raises(WeightsError, match="not a training checkpoint"):
        train(mix_store, solo_store, tmp_path, resume="last")


ATOMIC_WRITER = textwrap.dedent("""
    import sys
    import torch
    from avlab.train.resume import atomic_save

    weights = {"w": torch.arange(2_000_000, dtype=torch.float32)}  # 8 MB: writes take a while
    print("ready", flush=True)
    for k in range(1_000_000):
        weights["k"] = torch.tensor(k)
        atomic_save(weights, sys.argv[1])
""")


def test_a_kill_while_writing_never_leaves_a_torn_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    path = folder / "epoch=0-step=1.ckpt"
    atomic_save({"w": torch.zeros(4_000_000), "k": torch.tensor(-1)}, path)
    for delay in (0.05, 0.4):
        writer = subprocess.Popen([sys.executable, "-c", ATOMIC_WRITER, str(path)], stdout=subprocess.PIPE,
                                  text=True)
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
        try:
            writer.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait() == -signal.SIGKILL
        writer.stdout.close()
        # Whole: the first file, or one of the writer's.
        saved = torch.load(path, weights_only=True)
        assert int(saved["k"]) == -1 or torch.equal(saved["w"][:3], torch.tensor([0.0, 1.0, 2.0]))
    # At most stray hidden temporaries besides, which resume never picks.
    assert [p.name for p in folder.iterdir() if not p.name.startswith(".")] == [path.name]
    assert last_checkpoint(tmp_path) == path

"""A 2-process DistributedDataParallel run on CPU (gloo), as Lightning launches it: a script re-run per rank.

Lightning's "ddp" strategy starts the other ranks by re-running the command that started the
first, so the run lives in a script file executed in a subprocess (not in pytest's own process).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avlab.models import load_system

SCRIPT = """
import json, sys
import torch
torch.set_num_threads(1)
from avlab.models import system_preset
from avlab.train import fit
result = fit(sys.argv[1], "avisnet", system_kwargs=system_preset("avisnet", "tiny"), solo_store=sys.argv[2],
             max_epochs=1, batch_size=4, accelerator="cpu", devices=2, strategy="ddp", separation_eval_items=2,
             progress=False, root_dir=sys.argv[3])
trainer = result.task.trainer
print("RESULT " + json.dumps({"rank": trainer.global_rank, "world_size": trainer.world_size,
                              "metrics": result.metrics, "checkpoint": str(result.checkpoint)}), flush=True)
"""


@pytest.mark.slow
def test_ddp_on_cpu_with_gloo(mix_store: Path, solo_store: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(script), str(mix_store), str(solo_store), str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line[len("RESULT "):]) for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world_size"] == 2 for r in results)
    first, second = (r["metrics"] for r in sorted(results, key=lambda r: r["rank"]))
    # Validation figures and epoch losses are reduced over both processes: the same on each.
    for key in ("val/miou", "val/acc_iou75", "val/loss", "train/loss_epoch"):
        assert first[key] == pytest.approx(second[key]), key
    system = load_system(results[0]["checkpoint"])
    assert all(torch.isfinite(p).all() for p in system.parameters())

"""DDP: a 2-process CPU run under torchrun (gloo) completes and both ranks end with identical weights."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from tests.train_support import tiny_model_file

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent("""
    import os, sys
    import torch
    from core.train.pipeline import run_training
    from tests.train_support import tiny_config
    cfg = tiny_config(sys.argv[2], data={"batch_size": 2},
                      sir={"delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1}, finetune={"iterations": 3})
    res = run_training(cfg, sys.argv[1])
    torch.save(res.model.state_dict(), os.path.join(sys.argv[3], f"rank{os.environ['RANK']}.pt"))
""")


def test_two_process_gloo_run(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path / "run"), str(weights), str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "run" / "pruned.pth").is_file() and (tmp_path / "run" / "report.h5").is_file()
    log = (tmp_path / "run" / "train.log").read_text()
    assert log.count("[finetune] finished") == 1          # only rank 0 reports and writes

"""Nothing lost: cancelled or killed (even mid-checkpoint-write) and resumed ⇒ the same final weights."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from core.events import Cancelled, Progress, RunControl
from core.train.pipeline import run_training
from core.train.state import load_state, state_path
from tests.train_support import tiny_config, tiny_model_file

ROOT = Path(__file__).resolve().parents[1]
SIR = {"delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1}
FINETUNE = {"iterations": 4}
RUNTIME = {"device": "cpu", "log_every": 1, "checkpoint_every": 2}


def _config(weights: Path):
    return tiny_config(weights, sir=SIR, finetune=FINETUNE, runtime=RUNTIME)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("baseline")
    weights = tiny_model_file(tmp / "dense.pth")
    res = run_training(_config(weights), tmp / "run")
    return weights, res.model.state_dict()


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def test_cancel_mid_sir_then_resume(baseline, tmp_path):
    weights, expected = baseline
    control = RunControl()

    def sink(e):
        if isinstance(e, Progress) and e.stage == "sir" and e.iteration == 2:
            control.cancel()

    with pytest.raises(Cancelled):
        run_training(_config(weights), tmp_path / "run", sink, control)
    assert load_state(state_path(tmp_path / "run", "sir"))["iteration"] == 2
    res = run_training(_config(weights), tmp_path / "run", resume=True)
    assert _max_diff(res.model.state_dict(), expected) <= 1e-6


CHILD = textwrap.dedent("""
    import io, os, signal, sys
    import torch
    from core.train.pipeline import run_training
    from tests.train_support import tiny_config
    real_save, saves = torch.save, []

    def dying_save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("stage") == "finetune":
            saves.append(obj["iteration"])
            if len(saves) == 2:                      # the second finetune checkpoint: die half-way through it
                buf = io.BytesIO()
                real_save(obj, buf)
                with open(f, "wb") as fh:
                    fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                    fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        return real_save(obj, f, *args, **kwargs)

    torch.save = dying_save
    cfg = tiny_config(sys.argv[2], sir={SIR}, finetune={FT}, runtime={RT})
    run_training(cfg, sys.argv[1])
""").replace("{SIR}", repr(SIR)).replace("{FT}", repr(FINETUNE)).replace("{RT}", repr(RUNTIME))


def test_killed_during_checkpoint_write_then_resume(baseline, tmp_path):
    weights, expected = baseline
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(run), str(weights)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    # the checkpoint on disk is the previous, complete one; the half-written bytes sit in a temp file only
    state = load_state(state_path(run, "finetune"))
    assert state["iteration"] == 2
    assert list((run / "checkpoints").glob(".finetune_last.pth.partial-*"))
    res = run_training(_config(weights), run, resume=True)
    assert _max_diff(res.model.state_dict(), expected) <= 1e-6
    assert not list((run / "checkpoints").glob(".*.partial-*"))   # the next writer of a file sweeps its stale temps


def test_existing_run_needs_resume(baseline, tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "sir_last.pth").write_bytes(b"x")
    (tmp_path / "run" / ".ssl-vsr-run").write_text("ssl-vsr training run\n")
    from core.errors import UserError
    with pytest.raises(UserError, match="already holds a run"):
        run_training(_config(baseline[0]), tmp_path / "run")
    assert torch.is_tensor(next(iter(baseline[1].values())))

"""A run folder has one live run at a time, a finished run is never rewritten, and a run never writes over
what it reads; every input is read before the first unit of work (issue 20)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.errors import CheckpointError, ConfigError, UserError
from core.events import Cancelled, Progress, RunControl, StageStarted
from core.io.demo import demo_clip_dir
from core.train.pipeline import run_training
from core.train.runfolder import RunFinished, hold_run_dir
from core.train.state import state_path
from tests.train_support import tiny_config, tiny_model_file

ROOT = Path(__file__).resolve().parents[1]
FAST = {"sir": {"delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1}, "finetune": {"iterations": 2},
        "runtime": {"device": "cpu", "log_every": 1, "checkpoint_every": 2}}


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """``folder`` and everything under it (hidden files too) with its mtime and bytes."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in [folder, *sorted(folder.rglob("*"))]}


def cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    """``main.py ARGV`` in this process: exit code and the stderr lines."""
    code = main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


def events(sink_list: list):
    return lambda e: sink_list.append(e)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete tiny run (sir + finetune) and the weights it started from."""
    tmp = tmp_path_factory.mktemp("finished")
    weights = tiny_model_file(tmp / "dense.pth")
    run_training(tiny_config(weights, **FAST), tmp / "run")
    return tmp / "run", weights


# -- one live run per folder -----------------------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.train.runfolder import hold_run_dir, start_marker
    run = Path(sys.argv[1])
    with hold_run_dir(run, resume=False):          # what a live run holds while it trains
        start_marker(run)
        print("locked", flush=True)
        sys.stdin.read()                           # until the test lets go (or kills it)
""")


def _start_holder(run: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "locked", proc.stderr.read()[-2000:]
    return proc


def _end_holder(proc: subprocess.Popen, kill: bool = False) -> None:
    if kill:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)        # closes its stdin (it lets go), waits, closes the pipes


def test_a_folder_held_by_a_live_run_is_refused(tmp_path, capsys):
    weights = tiny_model_file(tmp_path / "dense.pth")
    run = tmp_path / "run"
    holder = _start_holder(run)
    try:
        before = snapshot(run)
        in_use = rf"run folder {run} is in use by another run \(pid {holder.pid}\)"
        with pytest.raises(UserError, match=in_use):                      # a second train
            run_training(tiny_config(weights, **FAST), run)
        with pytest.raises(UserError, match=in_use):                      # a resume
            run_training(tiny_config(weights, **FAST), run, resume=True)
        code, err = cli(["train", str(ROOT / "resources" / "configs" / "tiny.yaml"), "--run-dir", str(run)], capsys)
        assert code == 2 and len(err) == 1 and err[0].startswith("error: run folder") and "in use" in err[0]
        assert snapshot(run) == before                                     # nothing in the folder changed
    finally:
        _end_holder(holder)
    assert not [p for p in run.iterdir() if "lock" in p.name]             # the folder itself was locked: no file
    assert run_training(tiny_config(weights, **FAST), run).pruned_model.is_file()


def test_a_killed_runs_lock_is_free_again(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    run = tmp_path / "run"
    holder = _start_holder(run)
    _end_holder(holder, kill=True)
    assert holder.returncode == -signal.SIGKILL
    result = run_training(tiny_config(weights, **FAST), run)           # the kernel let go of the folder's lock
    assert result.pruned_model.is_file() and not [p for p in run.iterdir() if "lock" in p.name]


def test_a_second_start_in_the_same_process_is_refused(tmp_path):
    """The GUI runs training in a worker thread: a second start there is refused like a second process."""
    weights = tiny_model_file(tmp_path / "dense.pth")
    run = tmp_path / "run"
    with hold_run_dir(run, resume=False):
        with pytest.raises(UserError, match=rf"in use by another run \(pid {os.getpid()}\)"):
            run_training(tiny_config(weights, **FAST), run)


# -- a finished run is left as it is -------------------------------------------------------------------------
def test_resuming_a_finished_run_changes_nothing(finished, capsys):
    run, weights = finished
    before = snapshot(run)
    with pytest.raises(RunFinished, match="finished run: nothing to resume, nothing changed"):
        run_training(tiny_config(weights, **FAST), run, resume=True)
    code, err = cli(["train", "--resume", str(run)], capsys)
    assert code == 0 and len(err) == 1 and "holds a finished run" in err[0] and str(run / "pruned.pth") in err[0]
    with pytest.raises(UserError, match="already holds a run that finished: choose another run folder"):
        run_training(tiny_config(weights, **FAST), run)                   # nor does a new run start there
    assert snapshot(run) == before


# -- a run never writes over what it reads ---------------------------------------------------------------------
@pytest.mark.parametrize("key", ["model.weights", "finetune.teacher"])
def test_an_input_inside_the_run_folder_is_refused(finished, key, capsys):
    run, weights = finished
    before = snapshot(run)
    code, err = cli(["train", "--resume", str(run), "--set", f"{key}={run / 'pruned.pth'}"], capsys)
    assert code == 2 and len(err) == 1 and f"{key} {run / 'pruned.pth'} lies inside the run folder" in err[0]
    assert snapshot(run) == before


def test_data_inside_the_run_folder_is_refused(finished):
    run, weights = finished
    before = snapshot(run)
    for data in ({"cache": str(run / "cache.h5")}, {"root": str(run / "clips")}):
        with pytest.raises(ConfigError, match="lies inside the run folder"):
            run_training(tiny_config(weights, **{**FAST, "data": data}), run, resume=True)
    assert snapshot(run) == before


@pytest.fixture
def dataset(tmp_path):
    """A copy of the demo clip as a dataset folder of the user's."""
    root = tmp_path / "dataset"
    shutil.copytree(demo_clip_dir(), root)
    return root


def test_a_run_folder_inside_a_dataset_is_refused(tmp_path, dataset):
    weights = tiny_model_file(tmp_path / "dense.pth")
    data = {"root": str(dataset / "GT"), "lr_root": str(dataset / "BIx4")}
    before = snapshot(dataset)
    with pytest.raises(ConfigError, match=rf"the run folder .* lies inside data\.lr_root {dataset / 'BIx4'}"):
        run_training(tiny_config(weights, **{**FAST, "data": data}), dataset / "BIx4" / "run")
    assert snapshot(dataset) == before


def test_a_cache_inside_a_dataset_or_on_an_input_is_refused(tmp_path, dataset):
    weights = tiny_model_file(tmp_path / "dense.pth")
    data = {"root": str(dataset / "GT"), "lr_root": str(dataset / "BIx4")}
    before = snapshot(dataset)
    with pytest.raises(ConfigError, match=r"data\.cache .* lies inside data\.root"):
        run_training(tiny_config(weights, **{**FAST, "data": {**data, "cache": str(dataset / "GT" / "c.h5")}}),
                     tmp_path / "run")
    with pytest.raises(ConfigError, match=r"data\.cache .* is also model\.weights"):
        run_training(tiny_config(weights, **{**FAST, "data": {**data, "cache": str(weights)}}), tmp_path / "run")
    assert snapshot(dataset) == before and not (tmp_path / "run").exists()


# -- every input read before the first unit of work ------------------------------------------------------------
def _broken_teacher(kind: str, tmp_path: Path, weights: Path) -> Path:
    if kind == "missing":
        return tmp_path / "no-teacher.pth"
    if kind == "other-variant":
        return tiny_model_file(tmp_path / "bidirectional.pth", variant="basicvsr")
    obj = torch.load(weights, weights_only=True)
    key = "forward_trunk.main.0.weight"
    tensor = obj["state_dict"][key]
    obj["state_dict"][key] = tensor.to_sparse() if kind == "sparse" else torch.full_like(tensor, float("nan"))
    torch.save(obj, tmp_path / f"{kind}.pth")
    return tmp_path / f"{kind}.pth"


@pytest.mark.parametrize("kind, error, match", [
    ("missing", CheckpointError, "finetune.teacher: .* no such file"),
    ("nan", CheckpointError, "finetune.teacher: .* NaN"),
    ("sparse", CheckpointError, "finetune.teacher: .* sparse"),
    ("other-variant", ConfigError, "finetune.teacher .* hidden states"),
])
def test_a_bad_teacher_is_refused_before_pretrain(tmp_path, kind, error, match):
    weights = tiny_model_file(tmp_path / "dense.pth")
    teacher = _broken_teacher(kind, tmp_path, weights)
    cfg = tiny_config(weights, **{**FAST, "stages": ["pretrain", "sir", "finetune"],
                                  "finetune": {"iterations": 2, "teacher": str(teacher)}})
    seen: list = []
    with pytest.raises(error, match=match):
        run_training(cfg, tmp_path / "run", events(seen))
    assert not any(isinstance(e, (StageStarted, Progress)) for e in seen)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_damaged_later_state_is_refused_before_resuming(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    run, control = tmp_path / "run", RunControl()

    def cancel_in_finetune(e):
        if isinstance(e, Progress) and e.stage == "finetune" and e.iteration == 2:
            control.cancel()

    cfg = tiny_config(weights, **{**FAST, "finetune": {"iterations": 4}})
    with pytest.raises(Cancelled):
        run_training(cfg, run, cancel_in_finetune, control)
    damaged = state_path(run, "finetune")
    damaged.write_bytes(damaged.read_bytes()[:100])
    sir_state = state_path(run, "sir").read_bytes()
    seen: list = []
    with pytest.raises(CheckpointError, match="finetune_last.pth"):
        run_training(cfg, run, events(seen), resume=True)
    assert not any(isinstance(e, (StageStarted, Progress)) for e in seen)
    assert state_path(run, "sir").read_bytes() == sir_state

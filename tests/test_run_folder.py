"""A run folder never rewrites the user's files; a new run refuses another run's folder; resume needs a run."""
from __future__ import annotations

import pytest

from core.errors import ConfigError, UserError
from core.train.pipeline import run_training
from core.train.runfolder import RUN_CONFIG
from core.train.runmarker import RUN_MARKER
from tests.train_support import tiny_config, tiny_model_file

FAST = {"sir": {"delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1}, "finetune": {"iterations": 2},
        "runtime": {"device": "cpu", "log_every": 1, "checkpoint_every": 2}}


def test_users_config_beside_the_run_is_untouched(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    run = tmp_path / "exp1"
    run.mkdir()
    mine = "# my commented config\nstages: [sir]   # keep this comment\n"
    (run / "config.yaml").write_text(mine)
    (run / "notes.txt").write_text("notes")
    result = run_training(tiny_config(weights, **FAST), run)
    assert (run / "config.yaml").read_text() == mine and (run / "notes.txt").read_text() == "notes"
    assert (run / RUN_CONFIG).is_file() and (run / RUN_MARKER).is_file() and result.pruned_model.is_file()
    # a second new run in the same folder is refused; the first run's files stay as they were
    before = (run / "pruned.pth").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        run_training(tiny_config(weights, **FAST), run)
    assert (run / "pruned.pth").read_bytes() == before


def test_a_folder_with_the_runs_file_names_is_refused(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "pruned.pth").write_bytes(b"the user's own model")
    with pytest.raises(UserError, match="pruned.pth"):
        run_training(tiny_config(weights, **FAST), tmp_path / "run")
    assert (tmp_path / "run" / "pruned.pth").read_bytes() == b"the user's own model"


def test_resume_needs_a_runs_folder(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    (tmp_path / "photos").mkdir()
    with pytest.raises(UserError, match="not a training run"):
        run_training(tiny_config(weights, **FAST), tmp_path / "photos", resume=True)


def test_a_failed_start_can_be_started_again(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth")
    bad = tiny_config(weights, **{**FAST, "data": {"root": str(tmp_path / "missing")}})
    with pytest.raises((ConfigError, UserError)):
        run_training(bad, tmp_path / "run")
    result = run_training(tiny_config(weights, **FAST), tmp_path / "run")
    assert result.pruned_model.is_file()

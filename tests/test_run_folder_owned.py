"""A run folder's files are the run's only where the run wrote them (hostile pass on ``train``): a user's file named
like the marker or a result is refused, never replaced nor taken for the run's; a resume that changes a setting the
saved states cannot honour is refused before any write; a refused plan leaves an existing folder as it was. Each:
one ``error:`` line, exit 2, every file byte for byte as it was."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.train.config_load import dump_config
from core.train.runmarker import RUN_MARKER
from tests.test_run_folder_lock import FAST, finished  # noqa: F401  (fixture)
from tests.train_support import tiny_config, unfinish
from tests.trust_support import checksums, refused


def _interrupted(finished, tmp_path: Path) -> Path:  # noqa: F811
    """A copy of the finished tiny run as a killed run leaves it (its states saved, its report not yet written)."""
    run = unfinish(Path(shutil.copytree(finished[0], tmp_path / "run")))
    (run / "report.h5").unlink()
    return run


def _config(tmp_path: Path, weights: Path, **sections) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("# my commented config\n" + dump_config(tiny_config(weights, **{**FAST, **sections})))
    return path


def test_a_users_file_named_like_the_marker_is_refused_and_kept(finished, tmp_path, capsys):  # noqa: F811
    config, run = _config(tmp_path, finished[1]), tmp_path / "F"
    run.mkdir()
    (run / RUN_MARKER).write_text("not a marker\n")
    before = checksums(tmp_path)
    refused(capsys, ["train", config, "--run-dir", run, "--stages", "pretrain"],
            r"\.ssl-vsr-run is not a training run's marker .*: refusing to use or replace it")
    refused(capsys, ["train", "--resume", run, config], r"\.ssl-vsr-run is not a training run's marker")
    assert checksums(tmp_path) == before


def test_a_resume_that_changes_a_setting_is_refused_before_any_write(finished, tmp_path, capsys):  # noqa: F811
    run = _interrupted(finished, tmp_path)
    config = run / "run_config.yaml"
    config.write_text("# my notes on this run\n" + config.read_text())
    before = checksums(tmp_path)
    refused(capsys, ["train", "--resume", run, "--set", "finetune.lr=0.1"],
            r"cannot resume with finetune\.lr = 0\.1: the run in .* was started with 0\.001 and its saved states "
            r"go on with that")
    assert checksums(tmp_path) == before
    commented = config.read_bytes()
    assert main(["train", "--resume", str(run), "--set", "runtime.log_every=3"]) == 0    # how often it logs may
    assert config.read_bytes() == commented and (run / "report.h5").is_file()


@pytest.mark.parametrize("settings, pattern", [
    ({"ratio": 0.5, "criterion": "l1", "widths": {"forward.0.mid": 1000}}, r"layer 'forward\.0\.mid': width 1000"),
    ({"ratio": 0.5, "criterion": "l1", "min_keep": 500}, r"min_keep 500"),
    ({"ratio": 1e-300, "criterion": "l1"}, r"ratio 1e-300"),
    ({"ratio": 0.5, "criterion": "l1", "widths": {"fusion": 4}}, r"no prunable layer named 'fusion'"),
])
def test_a_refused_plan_leaves_an_existing_empty_folder_empty(finished, tmp_path, capsys, settings,  # noqa: F811
                                                              pattern):
    config, run = _config(tmp_path, finished[1]), tmp_path / "empty"
    run.mkdir()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"settings": settings}))
    before = checksums(tmp_path)
    refused(capsys, ["train", config, "--plan", plan, "--run-dir", run], pattern)
    assert checksums(tmp_path) == before and list(run.iterdir()) == []


@pytest.mark.parametrize("name", ["pruned.pth", "report.h5", "finetune_best.pth"])
def test_a_users_file_named_like_a_result_is_not_taken_for_the_runs(finished, tmp_path, capsys, name):  # noqa: F811
    run = _interrupted(finished, tmp_path)
    marker = run / RUN_MARKER
    marker.write_text("".join(line for line in marker.read_text().splitlines(keepends=True)
                              if line != f"wrote {name}\n"))            # the run never got as far as writing it
    (run / name).write_bytes(b"the user's own file")
    before = checksums(tmp_path)
    refused(capsys, ["train", "--resume", run], rf"{name} was not written by this run .*: refusing to replace it")
    assert checksums(tmp_path) == before


def test_a_run_killed_after_its_report_is_finished(finished, tmp_path, capsys):  # noqa: F811
    """The report is the last file a run writes: recorded and there, the run ended (killed before the marker said)."""
    run = unfinish(Path(shutil.copytree(finished[0], tmp_path / "run")))
    before = checksums(tmp_path)
    assert main(["train", "--resume", str(run)]) == 0
    assert "holds a finished run" in capsys.readouterr().err and checksums(tmp_path) == before

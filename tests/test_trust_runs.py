"""A run folder a user moved, planted links in, or made with an earlier version (issue 29): ``train --resume`` and a
new run refuse in one line, exit 2, and never write (nor read a config) through a link; a ``train`` refused while
reading its data leaves the user's folder byte for byte and name for name as it was."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.io.output import OutputError, append_text
from core.train.runmarker import RUN_MARKER
from tests.test_run_folder_lock import finished  # noqa: F401  (fixture)
from tests.test_run_folder_owned import _config
from tests.train_support import unfinish
from tests.trust_support import checksums, refused, refused_measured


def _moved(finished, tmp_path: Path) -> Path:  # noqa: F811
    """The finished tiny run as a killed run leaves it (states saved, no report), moved to another place."""
    run = unfinish(Path(shutil.copytree(finished[0], tmp_path / "moved" / "run")))
    (run / "report.h5").unlink()
    return run


@pytest.fixture()
def document(tmp_path) -> Path:
    doc = tmp_path / "mine" / "thesis.txt"
    doc.parent.mkdir()
    doc.write_text("three years of work\n")
    return doc


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- 1. a moved run folder with a planted link ----------------------------------------------------------------
@pytest.mark.parametrize("name", [RUN_MARKER, "run_config.yaml", "train.log", "dense.pth", "sir_pruned.pth",
                                  "checkpoints/finetune_last.pth", "checkpoints/sir_last.pth"])
def test_a_resume_refuses_a_link_planted_at_the_runs_own_file(finished, tmp_path, capsys, document,  # noqa: F811
                                                             name):
    """The link points at the user's document, or at a copy of the run's own file elsewhere (a config that reads
    as valid): refused before the config is read from it, nothing written through it."""
    run = _moved(finished, tmp_path)
    elsewhere = tmp_path / "mine" / Path(name).name
    shutil.move(run / name, elsewhere)
    for target in (document, elsewhere):
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(target)
        before = checksums(tmp_path)
        refused(capsys, ["train", "--resume", run], rf"{name}\S* is a symbolic link where the run writes its own "
                                                    rf"file: refusing to write through it")
        assert checksums(tmp_path) == before


def test_a_resume_refuses_a_checkpoints_folder_that_is_a_link(finished, tmp_path, capsys):  # noqa: F811
    run = _moved(finished, tmp_path)
    shutil.move(run / "checkpoints", tmp_path / "mine")
    (run / "checkpoints").symlink_to(tmp_path / "mine")
    before = checksums(tmp_path)
    refused(capsys, ["train", "--resume", run], r"checkpoints is a symbolic link where the run writes its own file")
    assert checksums(tmp_path) == before


def test_a_run_folder_reached_through_a_link_is_refused(finished, tmp_path, capsys):  # noqa: F811
    run = _moved(finished, tmp_path)
    (tmp_path / "link").symlink_to(run)
    before = checksums(tmp_path)
    refused(capsys, ["train", "--resume", tmp_path / "link"],
            r"run folder \S*link is a symbolic link \(to \S*run\): refusing to read or write a run through it")
    config = _config(tmp_path, finished[1])
    (tmp_path / "empty").mkdir()
    (tmp_path / "to-empty").symlink_to(tmp_path / "empty")
    before = checksums(tmp_path)
    refused(capsys, ["train", config, "--run-dir", tmp_path / "to-empty"], r"to-empty is a symbolic link")
    refused(capsys, ["train", config, "--run-dir", tmp_path / "link", "--resume", tmp_path / "link"],
            r"link is a symbolic link")
    assert checksums(tmp_path) == before and list((tmp_path / "empty").iterdir()) == []


def test_a_resume_refuses_a_log_hard_linked_to_a_users_file(finished, tmp_path, capsys, document):  # noqa: F811
    """A hard link is no symbolic link, but the log is the one file a run appends to in place."""
    run = _moved(finished, tmp_path)
    (run / "train.log").unlink()
    os.link(document, run / "train.log")
    before = checksums(tmp_path)
    refused(capsys, ["train", "--resume", run], r"train\.log is a hard link to a file with another name")
    assert checksums(tmp_path) == before


def test_a_log_is_never_appended_through_a_hard_link(tmp_path, document):
    os.link(document, tmp_path / "train.log")
    with pytest.raises(OutputError, match=r"train\.log has 1 other name\(s\) \(a hard link"):
        append_text(tmp_path / "train.log", "a line\n")
    assert document.read_text() == "three years of work\n"


def test_a_planted_link_refusal_is_small(finished, tmp_path, document):  # noqa: F811
    run = _moved(finished, tmp_path)
    (run / "run_config.yaml").unlink()
    (run / "run_config.yaml").symlink_to(document)
    before = checksums(tmp_path)
    refused_measured(["train", "--resume", run], r"run_config\.yaml is a symbolic link")
    assert checksums(tmp_path) == before


# -- 2. a run folder of an earlier version (its marker records no names) ---------------------------------------
def _legacy(run: Path, finished_line: bool = False) -> Path:
    (run / RUN_MARKER).write_text("ssl-vsr training run\n" + ("finished\n" if finished_line else ""))
    return run


def test_an_earlier_versions_run_is_refused_with_what_to_do(finished, tmp_path, capsys):  # noqa: F811
    run, config = _legacy(_moved(finished, tmp_path)), _config(tmp_path, finished[1])
    before = checksums(tmp_path)
    refused(capsys, ["train", "--resume", run],
            r"run already holds a run of an earlier version of this tool, whose \.ssl-vsr-run does not record the "
            r"files it wrote: it cannot be resumed or restarted safely, nothing changed; resume it with that "
            r"version, or train on from its pruned\.pth in a new run folder \(--set model\.weights=\.\.\.\)$")
    refused(capsys, ["train", config, "--run-dir", run], r"of an earlier version")
    assert checksums(tmp_path) == before


def test_an_earlier_versions_finished_run_is_left_as_it_is(finished, tmp_path, capsys):  # noqa: F811
    run = _legacy(Path(shutil.copytree(finished[0], tmp_path / "run")), finished_line=True)
    before = checksums(tmp_path)
    assert main(["train", "--resume", str(run)]) == 0
    assert "holds a finished run" in capsys.readouterr().err and checksums(tmp_path) == before


def test_a_marker_alone_of_an_earlier_version_starts_over(finished, tmp_path):  # noqa: F811
    """Nothing but the old marker (a run refused before it wrote anything): no file to mistake, a new run starts."""
    run = tmp_path / "run"
    run.mkdir()
    _legacy(run)
    assert main(["train", str(_config(tmp_path, finished[1])), "--run-dir", str(run), "--stages", "finetune",
                 "--set", "finetune.tf_weight=0"]) == 0
    assert "wrote train.log" in (run / RUN_MARKER).read_text()


# -- 3. a train refused while reading its data -----------------------------------------------------------------
def _bad_dataset(tmp_path: Path) -> Path:
    """A dataset whose one clip holds a frame that is no image."""
    clip = tmp_path / "data" / "clip"
    clip.mkdir(parents=True)
    for i in range(3):
        (clip / f"{i:04d}.png").write_bytes(b"not a png")
    return tmp_path / "data"


@pytest.mark.parametrize("existing", [True, False])
def test_a_train_refused_reading_its_data_leaves_the_folder_as_it_was(finished, tmp_path, capsys,  # noqa: F811
                                                                    existing):
    data = _bad_dataset(tmp_path)
    config = _config(tmp_path, finished[1])
    run = tmp_path / "mine-run"
    if existing:
        run.mkdir()
        (run / "notes.txt").write_text("mine")
    before, listing = checksums(tmp_path), _listing(tmp_path)
    refused(capsys, ["train", config, "--run-dir", run, "--set", f"data.root={data}", "--set", f"data.lr_root={data}",
                     "--set", "data.kind=folder"], r"0000\.png")
    assert checksums(tmp_path) == before and _listing(tmp_path) == listing


def test_a_train_refused_building_its_data_cache_leaves_no_marker_nor_log(finished, tmp_path, capsys):  # noqa: F811
    """The cache logs its progress (every 50 frames) before a broken frame further on refuses the data: that log
    line once kept the start marker, written before the data, in the folder."""
    demo = Path(__file__).resolve().parents[1] / "resources" / "demo"
    for which in ("GT", "BIx4"):
        for clip in ("a", "b"):
            shutil.copytree(demo / which, tmp_path / which / clip)
    broken = tmp_path / "BIx4" / "b" / "0020.png"
    broken.write_bytes(broken.read_bytes()[:200])                # its header reads, its pixels do not
    config = _config(tmp_path, finished[1])
    run = tmp_path / "mine-run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    before, listing = checksums(tmp_path), _listing(tmp_path)
    assert main(["train", str(config), "--run-dir", str(run), "--set", f"data.root={tmp_path / 'GT'}", "--set",
                 f"data.lr_root={tmp_path / 'BIx4'}", "--set", f"data.cache={tmp_path / 'c.h5'}"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[cache] 50/96" and err[1].startswith("error: cannot read image") and len(err) == 2
    assert checksums(tmp_path) == before and _listing(tmp_path) == listing

"""No run or command writes through a symbolic link (issue 29, item 1): a link where the tool's own file goes —
an output, its lock, a run's marker, run_config.yaml, train.log, checkpoints — is refused in one line, exit 2,
and the file it points to keeps every byte."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from core.io.output import OutputError, append_text, write_text
from core.train.runfolder import hold_run_dir
from tests.test_no_data_loss import _refused, ckpt, clip  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "resources" / "configs" / "tiny.yaml"


@pytest.fixture()
def document(tmp_path) -> Path:
    """A user's document that links will point at."""
    doc = tmp_path / "thesis.txt"
    doc.write_text("three years of work\n")
    return doc


def _sum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", [".ssl-vsr-run", "run_config.yaml", "train.log", "dense.pth", "checkpoints"])
def test_a_new_run_refuses_a_link_at_its_own_names(tmp_path, document, capsys, name):
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(document)
    before = _sum(document)
    err = _refused(capsys, "train", TINY, "--run-dir", run)
    assert "symbolic link" in err or "already holds" in err, err
    assert _sum(document) == before and sorted(p.name for p in run.iterdir()) == [name]


def test_a_resume_refuses_a_link_to_a_state(tmp_path, document, capsys):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".ssl-vsr-run").write_text("ssl-vsr training run\n")
    (run / "checkpoints" / "finetune_last.pth").symlink_to(document)
    before = _sum(document)
    err = _refused(capsys, "train", TINY, "--resume", run)
    assert "symbolic link" in err and "finetune_last.pth" in err
    assert _sum(document) == before


def test_a_link_at_the_old_run_lock_name_is_never_opened(tmp_path, document):
    """Runs lock the folder itself now: a link named like the old lock file is neither followed nor truncated."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".ssl-vsr-run.lock").symlink_to(document)
    before = _sum(document)
    with hold_run_dir(run, resume=False):
        pass
    assert _sum(document) == before and (run / ".ssl-vsr-run.lock").is_symlink()


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_link_at_the_output_name_is_refused(tmp_path, document, overwrite):
    out = tmp_path / "model.pth"
    out.symlink_to(document)
    before = _sum(document)
    with pytest.raises(OutputError, match="is a symbolic link: refusing to write through it") as err:
        write_text(out, "new", overwrite=overwrite)
    assert "\n" not in str(err.value) and _sum(document) == before and out.is_symlink()


def test_a_link_at_the_lock_name_is_refused(tmp_path, document):
    out = tmp_path / "model.pth"
    (tmp_path / ".model.pth.lock").symlink_to(document)
    before = _sum(document)
    with pytest.raises(OutputError, match="symbolic link where this tool's lock file goes"):
        write_text(out, "new")
    assert _sum(document) == before and not out.exists()


def test_sr_refuses_a_link_at_its_output_and_at_its_lock(capsys, ckpt, clip, tmp_path, document):  # noqa: F811
    before = _sum(document)
    (tmp_path / "out.mp4").symlink_to(document)
    assert "symbolic link" in _refused(capsys, "sr", ckpt, clip, tmp_path / "out.mp4", "--overwrite")
    (tmp_path / ".frames.lock").symlink_to(document)
    assert "symbolic link" in _refused(capsys, "sr", ckpt, clip, tmp_path / "frames")
    assert _sum(document) == before and not (tmp_path / "frames").exists()


def test_a_log_is_never_appended_through_a_link(tmp_path, document):
    log = tmp_path / "train.log"
    log.symlink_to(document)
    before = _sum(document)
    with pytest.raises(OutputError, match="symbolic link"):
        append_text(log, "a line\n")
    assert _sum(document) == before

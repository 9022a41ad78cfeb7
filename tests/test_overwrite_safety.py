"""--overwrite replaces only regular files and folders of our own frames; the sweep removes only our leftovers."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.io.frames import write_frames
from core.io.output import OutputError, claim_output, staged_folder, write_text
from tests.helpers import tiny_model
from tests.test_no_data_loss import _digest, _refused, ckpt, clip  # noqa: F401  (fixtures)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this OS")
@pytest.mark.parametrize("name", ["out", "out.mp4"])
def test_a_fifo_is_never_replaced(capsys, ckpt, clip, tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    assert "not a regular file or folder" in _refused(capsys, "sr", ckpt, clip, fifo, "--overwrite")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_is_never_replaced(capsys, ckpt, clip):
    assert "not a regular file or folder" in _refused(capsys, "sr", ckpt, clip, "/dev/null", "--overwrite")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(OutputError, match="not a regular file"):
        claim_output("/dev/null", overwrite=True)       # the API path too


def test_a_symlink_to_a_fifo_is_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link.mp4").symlink_to(fifo)
    with pytest.raises(OutputError, match="is a symbolic link: refusing to write through it"):
        claim_output(tmp_path / "link.mp4", overwrite=True)
    assert (tmp_path / "link.mp4").is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_the_working_folder_is_never_replaced(capsys, ckpt, clip, tmp_path, monkeypatch):
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    (work / "0000.png").write_bytes(b"frame")
    monkeypatch.chdir(work)
    before = _digest(work)
    assert "working folder" in _refused(capsys, "sr", ckpt, clip, ".", "--overwrite")
    assert "working folder" in _refused(capsys, "sr", ckpt, clip, "..", "--overwrite")   # a parent of it
    assert _digest(work) == before and Path.cwd() == work
    for protected in (Path.home(), Path("/")):
        with pytest.raises(OutputError, match="home folder|filesystem root"):
            claim_output(protected, kind="folder", overwrite=True)


def test_a_folder_of_documents_is_not_an_output(capsys, ckpt, clip, tmp_path):
    docs = tmp_path / "Documents"
    (docs / "taxes").mkdir(parents=True)
    (docs / "notes.txt").write_text("my notes")
    (docs / "letter.docx").write_bytes(b"PK\x03\x04 my letter")
    (docs / "taxes" / "2023.pdf").write_bytes(b"%PDF my taxes")
    before = _digest(docs)
    assert "not a frame" in _refused(capsys, "sr", ckpt, clip, docs, "--overwrite")
    assert _digest(docs) == before
    frames_and_a_note = tmp_path / "mixed"
    write_frames(np.zeros((2, 8, 8, 3), np.uint8), frames_and_a_note)
    (frames_and_a_note / "readme.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a frame"):
        with staged_folder(frames_and_a_note, overwrite=True) as tmp:     # the API path too
            (tmp / "0000.png").write_bytes(b"x")
    assert (frames_and_a_note / "readme.txt").read_text() == "mine"


def test_a_folder_of_our_frames_is_replaced_with_overwrite(capsys, ckpt, clip, tmp_path):
    out = tmp_path / "out"
    assert main(["sr", str(ckpt), str(clip), str(out)]) == 0
    first = _digest(out)
    other = tmp_path / "other.pth"
    torch.save({"params": tiny_model("basicvsr", 8, 1, seed=1).state_dict()}, other)
    assert main(["sr", str(other), str(clip), str(out), "--overwrite"]) == 0
    assert _digest(out).keys() == first.keys() and _digest(out) != first
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name or p.name.endswith(".lock")]
    capsys.readouterr()


def test_a_users_files_named_like_our_leftovers_survive(capsys, ckpt, clip, tmp_path):
    out = tmp_path / "out"
    mine = {tmp_path / ".out.partial-foo": b"my file", tmp_path / ".out.partial-abcdefgh.txt.bak": b"mine too"}
    for path, data in mine.items():
        path.write_bytes(data)
    folder = tmp_path / ".out.partial-12345678"       # our name pattern, but no marker inside: not ours
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    assert main(["sr", str(ckpt), str(clip), str(out)]) == 0
    assert len(list(out.iterdir())) == 3
    assert all(path.read_bytes() == data for path, data in mine.items())
    assert (folder / "keep.txt").read_text() == "keep"
    capsys.readouterr()


def test_our_own_leftovers_are_swept(tmp_path):
    target = tmp_path / "model.pth"
    killed_file = tmp_path / ".model.pth.partial-ab12cd_9"             # a staged file lives in a marked folder
    killed_file.mkdir()
    (killed_file / ".ssl-vsr-partial").touch()
    (killed_file / ".model.pth.partial-ab12cd_9.pth").write_bytes(b"killed file")
    killed = tmp_path / ".model.pth.partial-zz12cd_9"
    killed.mkdir()
    (killed / ".ssl-vsr-partial").touch()
    write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_a_users_file_at_the_lock_name_is_kept(tmp_path):
    lock = tmp_path / ".model.pth.lock"
    lock.write_text("my own lock notes, not a pid")
    with pytest.raises(OutputError, match="in the way"):
        write_text(tmp_path / "model.pth", "new")
    assert lock.read_text() == "my own lock notes, not a pid" and not (tmp_path / "model.pth").exists()

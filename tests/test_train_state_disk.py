"""A training checkpoint (``core.train.state.save_state``) on a disk that fills or fails mid-write: one line naming
the disk, the previous checkpoint intact and loadable, no temporary file left; ``train`` exits 2."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

import core.io.output as output
from core.cli import main
from core.io.output import OutputError
from core.train.state import load_state, model_from_state, save_state, state_path
from tests.conftest import ROOT
from tests.helpers import small_disk, tiny_model
from tests.test_disk_errors import TORCH_FULL, _no_free_inodes, _one_line, _ours

TINY_YAML = str(ROOT / "resources" / "configs" / "tiny.yaml")


def _previous_state(run: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A run folder holding the state of iteration 1 of "sir"; its path and the weights in it."""
    model = tiny_model("basicvsr", 8, 1)
    path = state_path(run, "sir")
    save_state(path, "sir", 1, 10, model, {"extra": None})
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def _fail_like_a_full_disk(monkeypatch, how: str) -> None:
    """What the disk does to ``torch.save``'s file: refuse the bytes midway (torch's C++ writer then reports only
    "unexpected pos", as seen on a full tmpfs), refuse the flush, or refuse the temporary file itself."""
    if how == "torch.save":
        def failing_save(obj, f, *args, **kwargs):
            Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
            raise RuntimeError(TORCH_FULL)
        monkeypatch.setattr(torch, "save", failing_save)
    elif how == "fsync":                 # the bytes sat in the page cache; the failing disk says so at the flush
        real = output._fsync_file

        def failing_fsync(path):
            if output.PARTIAL in Path(path).name:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
            return real(path)
        monkeypatch.setattr(output, "_fsync_file", failing_fsync)
    else:                                # no room for even the temporary file's entry
        real_open = os.open

        def full_open(path, flags, *args, **kwargs):
            if output.PARTIAL in os.path.basename(os.fsdecode(path)) and flags & os.O_CREAT:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fsdecode(path))
            return real_open(path, flags, *args, **kwargs)
        monkeypatch.setattr(os, "open", full_open)


@pytest.mark.parametrize("how, full, words", [
    ("torch.save", True, "disk is full"), ("torch.save", False, "disk is full, over quota or failing"),
    ("fsync", False, "input/output error"), ("partial", False, "disk is full")])
def test_a_state_the_disk_refuses_keeps_the_previous_one(tmp_path, monkeypatch, how, full, words):
    path, weights = _previous_state(tmp_path / "run")
    before = path.read_bytes()
    _fail_like_a_full_disk(monkeypatch, how)
    if full:
        _no_free_inodes(monkeypatch)
    with pytest.raises(OutputError) as err:
        save_state(path, "sir", 2, 10, tiny_model("basicvsr", 8, 1, seed=1), {"extra": None})
    text = _one_line(err.value)
    assert words in text and str(path) in text and str(output._disk_of(tmp_path)) in text, text
    assert "nothing was replaced" in text and "unexpected pos" not in text
    monkeypatch.undo()
    assert path.read_bytes() == before and _ours(path.parent) == [] and os.listdir(path.parent) == [path.name]
    state = load_state(path)
    assert state["iteration"] == 1
    assert all(torch.equal(v, weights[k]) for k, v in model_from_state(state).state_dict().items())


def test_a_state_on_a_real_full_disk(tmp_path):
    """The same on a real small file system (root only): torch.save's own failure, not a stand-in."""
    with small_disk(tmp_path, "16m") as mnt:
        path, _ = _previous_state(mnt / "run")
        before = path.read_bytes()
        vfs = os.statvfs(mnt)
        (mnt / "filler").write_bytes(bytes(vfs.f_bavail * vfs.f_frsize - (256 << 10)))
        with pytest.raises(OutputError) as err:
            save_state(path, "sir", 2, 10, tiny_model("basicvsr", 8, 1, seed=1), {"extra": None})
        text = _one_line(err.value)
        assert f"the disk is full: no space left on the file system at {mnt}" in text and str(path) in text, text
        assert path.read_bytes() == before and load_state(path)["iteration"] == 1
        assert os.listdir(path.parent) == [path.name]


def test_train_stops_with_one_line_when_a_checkpoint_does_not_fit(capsys, tmp_path, monkeypatch):
    """``train``: the second checkpoint meets a full disk. Exit 2, one line naming the disk, the first checkpoint
    intact, and ``--resume`` continues from it once there is room again."""
    run = tmp_path / "run"
    real, saves = torch.save, []

    def second_state_fails(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("stage") == "pretrain":
            saves.append(obj["iteration"])
            if len(saves) == 2:
                Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
                raise RuntimeError(TORCH_FULL)
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", second_state_fails)
    _no_free_inodes(monkeypatch)
    common = ["--device", "cpu", "--set", "model.num_feat=8", "--set", "model.num_block=1", "--set",
              "data.clip_length=3", "--set", "runtime.checkpoint_every=1"]
    argv = ["train", TINY_YAML, "--run-dir", str(run), "--stages", "pretrain", "--set", "pretrain.iterations=3"]
    assert main(argv + common) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    path = state_path(run, "pretrain")
    assert last.startswith("error: cannot write ") and str(path) in last and "disk is full" in last, err
    assert str(output._disk_of(tmp_path)) in last and "Traceback" not in err
    assert saves == [1, 2] and load_state(path)["iteration"] == 1 and _ours(path.parent) == []
    monkeypatch.undo()
    assert main(["train", "--resume", str(run), *common]) == 0
    assert load_state(path)["iteration"] == 3

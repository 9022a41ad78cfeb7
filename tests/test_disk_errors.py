"""A disk that refuses a write (full, no free inodes, over quota, read-only, busy, failing) is one line naming the
disk, exit 2, and nothing replaced: at the lock file, the partial file or folder, the swap journal, the final
swap, and inside torch.save."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

import core.io.output as output
import core.io.swap as swap
from core.cli import main
from core.io.checkpoint import save_model
from core.io.output import OutputError, exclusive_lock, staged_folder, write_text
from tests.helpers import tiny_model
from tests.test_no_data_loss import _digest, ckpt, clip  # noqa: F401  (fixtures)

TORCH_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 1024 vs 960"


def _fail_open(monkeypatch, code: int, when) -> None:
    """``os.open`` raises ``OSError(code)`` for the paths ``when(name)`` picks (the lock, a partial file)."""
    real = os.open

    def fake(path, flags, *args, **kwargs):
        if when(os.path.basename(os.fsdecode(path))) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


def _no_free_inodes(monkeypatch) -> None:
    real = os.statvfs

    def fake(path):
        s = real(path)
        return os.statvfs_result((s.f_bsize, s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, 0, 0,
                                  s.f_flag, s.f_namemax))

    monkeypatch.setattr(os, "statvfs", fake)


def _one_line(err: Exception) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text and "Errno" not in text, text
    return text


def _ours(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".partial-" in p.name or p.name.endswith(".lock"))


PICK = {"lock": lambda name: ".lock" in name, "partial": lambda name: ".partial-" in name}
LOCK = PICK["lock"]


@pytest.mark.parametrize("code, where, words", [
    (errno.ENOSPC, "lock", "disk is full"), (errno.ENOSPC, "partial", "disk is full"),
    (errno.EDQUOT, "lock", "quota"), (errno.EDQUOT, "partial", "quota"),
    (errno.EROFS, "lock", "read-only"), (errno.EROFS, "partial", "read-only"), (errno.EIO, "partial", "input/output")],
    ids=lambda v: errno.errorcode.get(v, v) if isinstance(v, int) else v)
def test_a_refused_lock_or_partial_file_is_one_line_naming_the_disk(tmp_path, monkeypatch, code, where, words):
    target = tmp_path / "model.pth"
    target.write_bytes(b"previous")
    _fail_open(monkeypatch, code, PICK[where])
    with pytest.raises(OutputError) as err:
        write_text(target, "new", overwrite=True)
    text = _one_line(err.value)
    assert words in text and str(output._disk_of(tmp_path)) in text and str(target) in text
    assert target.read_bytes() == b"previous" and _ours(tmp_path) == []


def test_no_free_inodes_says_so(tmp_path, monkeypatch):
    target = tmp_path / "frames"
    _fail_open(monkeypatch, errno.ENOSPC, LOCK)
    _no_free_inodes(monkeypatch)
    with pytest.raises(OutputError, match="no free inodes") as err:
        with staged_folder(target):
            pass
    assert str(output._disk_of(tmp_path)) in _one_line(err.value) and not target.exists()


def test_a_refused_partial_folder_or_journal_replaces_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "0000.png").write_bytes(b"old")
    real_mkdir = os.mkdir

    def full_mkdir(path, *args, **kwargs):
        if ".partial-" in os.fsdecode(path):
            raise OSError(errno.ENOSPC, "No space left on device", os.fsdecode(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", full_mkdir)
    with pytest.raises(OutputError, match="disk is full"):
        with staged_folder(target, overwrite=True):
            pass
    monkeypatch.setattr(os, "mkdir", real_mkdir)

    real_write = Path.write_text

    def full_journal(self, *args, **kwargs):
        if self.name.startswith(output.SWAP_RECORD):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_journal)
    with pytest.raises(OutputError, match="disk is full"):
        with staged_folder(target, overwrite=True) as tmp:
            (tmp / "0000.png").write_bytes(b"new")
    assert (target / "0000.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("step", ["exchange", "first rename", "second rename"])
def test_a_failed_swap_keeps_the_old_folder(tmp_path, monkeypatch, step):
    target = tmp_path / "out"
    target.mkdir()
    (target / "0000.png").write_bytes(b"old")
    if step == "exchange":     # a bind-mounted folder the mount check could not see: the kernel says EBUSY
        def busy(a, b):
            raise OSError(errno.EBUSY, "Device or resource busy", str(a), None, str(b))
        monkeypatch.setattr(swap, "_exchange", busy)
    else:
        monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
        real = os.rename
        calls = []

        def failing(src, dst, *args, **kwargs):
            if Path(dst) == target or Path(src) == target:
                calls.append(dst)
                if len(calls) == (1 if step == "first rename" else 2):
                    raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OutputError) as err:
        with staged_folder(target, overwrite=True) as tmp:
            (tmp / "0000.png").write_bytes(b"new")
    text = _one_line(err.value)
    assert ("busy" if step == "exchange" else "disk is full") in text and "nothing was replaced" in text
    assert (target / "0000.png").read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_ebusy_on_a_file_target_is_one_line(tmp_path, monkeypatch):
    target = tmp_path / "model.pth"
    target.write_bytes(b"previous")
    real = os.replace

    def busy(src, dst, *args, **kwargs):
        if Path(dst) == target:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src), None, str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", busy)
    with pytest.raises(OutputError, match=f"{target} is busy") as err:
        write_text(target, "new", overwrite=True)
    _one_line(err.value)
    assert target.read_bytes() == b"previous" and _ours(tmp_path) == []


def test_a_bind_mount_is_never_replaced(tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    (target / "0000.png").write_bytes(b"old")
    monkeypatch.setattr(output, "_mount_points", lambda: {str(target)})   # as /proc/self/mountinfo lists it
    with pytest.raises(OutputError, match="mount point"):
        with staged_folder(target, overwrite=True):
            pass
    assert (target / "0000.png").read_bytes() == b"old"


def test_a_run_folder_lock_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    _fail_open(monkeypatch, errno.ENOSPC, LOCK)
    with pytest.raises(OutputError, match="disk is full") as err:
        with exclusive_lock(tmp_path / "run.lock", lambda pid: OutputError("busy")):
            pass
    assert "run.lock" in _one_line(err.value) and not (tmp_path / "run.lock").exists()


@pytest.mark.parametrize("full", [True, False])
def test_torch_save_on_a_full_disk_is_the_disk_error(tmp_path, monkeypatch, full):
    target = tmp_path / "p.pth"
    target.write_bytes(b"previous")

    def failing_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half")
        raise RuntimeError(TORCH_FULL)

    monkeypatch.setattr(torch, "save", failing_save)
    if full:
        _no_free_inodes(monkeypatch)
    with pytest.raises(OutputError) as err:
        save_model(tiny_model("basicvsr", 8, 1), target, overwrite=True)
    text = _one_line(err.value)
    assert "unexpected pos" not in text and "inline_container" not in text and str(target) in text
    assert ("disk is full" if full else "disk is full, over quota or failing") in text
    assert str(output._disk_of(tmp_path)) in text and "nothing was replaced" in text
    assert target.read_bytes() == b"previous" and _ours(tmp_path) == []


def test_other_torch_runtime_errors_are_not_disguised(tmp_path, monkeypatch):
    def broken(obj, f, *args, **kwargs):
        raise RuntimeError("a bug in the payload")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="a bug in the payload"):
        save_model(tiny_model("basicvsr", 8, 1), tmp_path / "p.pth")


# -- through the command line: exit 2, one line on stderr, the old output intact ----------------------------------
def _cli_refused(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, captured.err
    return err


@pytest.mark.parametrize("code, where", [(errno.ENOSPC, "lock"), (errno.ENOSPC, "partial"), (errno.EROFS, "lock")],
                         ids=["ENOSPC-lock", "ENOSPC-partial", "EROFS-lock"])
def test_sr_onto_a_refusing_disk_exits_2_and_keeps_the_old_output(capsys, ckpt, clip, tmp_path, monkeypatch, code,
                                                                 where):
    out = tmp_path / "out"
    assert main(["sr", str(ckpt), str(clip), str(out)]) == 0
    capsys.readouterr()
    before = _digest(out)
    if where == "partial":     # the staged folder is made by mkdtemp: os.mkdir
        real = os.mkdir

        def refuse(path, *args, **kwargs):
            if ".out.partial-" in os.fsdecode(path):
                raise OSError(code, os.strerror(code), os.fsdecode(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, "mkdir", refuse)
    else:
        _fail_open(monkeypatch, code, lambda name: name.startswith(".out.lock"))   # built as .out.lock-XXXX
    err = _cli_refused(capsys, ["sr", ckpt, clip, out, "--overwrite"])
    assert str(output._disk_of(tmp_path)) in err
    assert _digest(out) == before and _ours(tmp_path) == []


@pytest.mark.parametrize("failure", ["partial", "torch.save"])
def test_prune_onto_a_full_disk_exits_2_and_keeps_the_old_model(capsys, ckpt, tmp_path, monkeypatch, failure):
    out = tmp_path / "p.pth"
    out.write_bytes(b"previous model")
    if failure == "partial":
        _fail_open(monkeypatch, errno.ENOSPC, lambda name: name.startswith(".p.pth.partial-"))
    else:
        def failing_save(obj, f, *args, **kwargs):
            raise RuntimeError(TORCH_FULL)
        monkeypatch.setattr(torch, "save", failing_save)
    err = _cli_refused(capsys, ["prune", ckpt, "--ratio", "0.5", "--no-reconstruct", "--out", out, "--overwrite"])
    assert "disk is full" in err and "unexpected pos" not in err and str(output._disk_of(tmp_path)) in err
    assert out.read_bytes() == b"previous model" and _ours(tmp_path) == []

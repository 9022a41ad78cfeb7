"""Locks at the start, held to the end, that a deleted file cannot steal; only the tool's own leftovers removed;
a replaced folder keeps its owner, mode and ACLs; a refused --resume touches nothing (issue 29, items 2-4, 6)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.io.output import OutputError, held_output, staged_folder, write_text
from tests.test_no_data_loss import _refused, ckpt, clip  # noqa: F401  (fixtures)
from tests.test_run_folder_lock import finished, snapshot  # noqa: F401  (fixture)
from tests.train_support import unfinish

ROOT = Path(__file__).resolve().parents[1]


# -- locks at the start --------------------------------------------------------------------------------------
def test_a_second_command_into_a_held_output_is_refused_at_once(capsys, ckpt, tmp_path):  # noqa: F811
    out, pruned = tmp_path / "model.h5", tmp_path / "p.pth"
    with held_output(out), held_output(pruned):             # a first export and prune, still computing
        err = _refused(capsys, "export", ckpt, "--format", "h5", "--out", out, "--overwrite")
        assert "another process is writing" in err and f"(pid {os.getpid()})" in err
        err = _refused(capsys, "prune", ckpt, "--ratio", "0.5", "--out", pruned, "--no-reconstruct", "--overwrite")
        assert "another process is writing" in err
    assert not out.exists() and not pruned.exists()


HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.io.output import OutputError, held_output, write_text
    target = Path(sys.argv[1])
    with held_output(target, overwrite=True):
        print("held", flush=True)
        sys.stdin.readline()                          # the test deletes our lock file meanwhile
        try:
            write_text(target, "first", overwrite=True)
        except OutputError as e:
            print(e, flush=True)
""")


def test_deleting_a_live_lock_file_does_not_let_two_writers_replace_each_other(tmp_path):
    target = tmp_path / "out.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()
        (tmp_path / ".out.txt.lock").unlink()              # "stale", says the user
        write_text(target, "second")                         # a second writer gets a fresh lock
        out, _ = proc.communicate("go\n", timeout=60)
    finally:
        proc.kill()
    assert "was removed or replaced while" in out and "nothing was replaced" in out and "\n" not in out.strip()
    assert target.read_text() == "second"


# -- only our own leftovers are removed ----------------------------------------------------------------------------
def test_user_files_named_like_partials_and_locks_are_kept(tmp_path):
    mine = {tmp_path / ".model.pth.partial-backup01": b"my backup",          # a file: never a partial of ours
            tmp_path / ".model.pth.partial-abcd1234" / "notes.txt": b"no marker"}
    for path, data in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    write_text(tmp_path / "model.pth", "new")
    assert all(p.read_bytes() == d for p, d in mine.items())
    lock = tmp_path / ".other.pth.lock"
    lock.write_bytes(b"")                                   # an empty file at the lock name is not ours either
    with pytest.raises(OutputError, match="in the way of this tool's lock"):
        write_text(tmp_path / "other.pth", "new")
    assert lock.read_bytes() == b"" and not (tmp_path / "other.pth").exists()


# -- a replaced folder keeps who owns it and who may read it ------------------------------------------------------
def _posix_acl(uid: int) -> bytes:
    """A POSIX access ACL (the kernel's xattr form): owner rwx, user ``uid`` r-x, group ---, mask r-x, other ---."""
    entries = [(0x01, 7, 0xFFFFFFFF), (0x02, 5, uid), (0x04, 0, 0xFFFFFFFF), (0x10, 5, 0xFFFFFFFF),
               (0x20, 0, 0xFFFFFFFF)]
    return (2).to_bytes(4, "little") + b"".join(t.to_bytes(2, "little") + p.to_bytes(2, "little") +
                                                 i.to_bytes(4, "little") for t, p, i in entries)


@pytest.mark.parametrize("mode", [0o700, 0o2770, 0o750])
def test_a_replaced_empty_folder_keeps_its_mode(tmp_path, mode):
    out = tmp_path / "private"
    out.mkdir()
    os.chmod(out, mode)
    with staged_folder(out) as tmp:
        (tmp / "0000.png").write_bytes(b"frame")
    assert stat.S_IMODE(os.lstat(out).st_mode) == mode and (out / "0000.png").read_bytes() == b"frame"


@pytest.mark.skipif(not hasattr(os, "setxattr") or os.geteuid() != 0, reason="needs Linux xattrs and root")
def test_a_replaced_folder_keeps_its_owner_and_acl(tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    os.chown(out, 12345, 23456)
    try:
        os.setxattr(out, "system.posix_acl_access", _posix_acl(4242))
    except OSError:
        pytest.skip("no POSIX ACLs on this file system")
    acl = os.getxattr(out, "system.posix_acl_access")
    with staged_folder(out) as tmp:
        (tmp / "0000.png").write_bytes(b"frame")
    info = os.lstat(out)
    assert (info.st_uid, info.st_gid) == (12345, 23456)
    assert os.getxattr(out, "system.posix_acl_access") == acl


# -- a refused resume touches nothing ----------------------------------------------------------------------------
def test_a_resume_with_other_iterations_is_refused_before_any_write(finished, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "unfinished"
    shutil.copytree(finished[0], run)
    unfinish(run)                                                         # as a killed run leaves it
    (run / "report.h5").unlink()
    before = snapshot(run)
    err = _refused(capsys, "train", "--resume", run, "--set", "finetune.iterations=8")
    assert "cannot resume with finetune.iterations = 8: the run in" in err and "was started with 2" in err
    assert snapshot(run) == before


def test_heldout_clip_overwrite_never_mixes_old_and_new_frames(tmp_path, monkeypatch):
    import numpy as np
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from make_heldout_clip import write_clip

    out = tmp_path / "clip"
    write_clip(out, np.zeros((5, 16, 16, 3), np.uint8), False, str(tmp_path / "src.mp4"))
    write_clip(out, np.full((3, 16, 16, 3), 9, np.uint8), True, str(tmp_path / "src.mp4"))
    assert [sorted(p.name for p in (out / f).iterdir()) for f in ("GT", "BIx4")] == [[f"{i:04d}.png" for i in
                                                                                      range(3)]] * 2


def test_a_refused_command_leaves_no_folder_its_lock_made(capsys, ckpt, tmp_path):  # noqa: F811
    out = tmp_path / "new" / "deeper" / "p.pth"
    _refused(capsys, "prune", ckpt, "--ratio", "7", "--out", out)      # refused after its output was locked
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dense.pth"]


def test_users_folders_with_an_owner_file_are_not_swept(tmp_path):
    from core.stream.scratch import scratch_dir

    beside = tmp_path / ".out.partial-abcd1234"                         # named like sr's scratch beside "out"
    elsewhere = tmp_path / ".ssl-vsr-scratch-mine"                      # named like scratch in a scratch folder
    for folder in (beside, elsewhere):
        folder.mkdir()
        (folder / ".owner").write_text("")
        (folder / "data.txt").write_text("keep")
    write_text(tmp_path / "out", "x")
    with scratch_dir(tmp_path):
        pass
    assert all((folder / "data.txt").read_text() == "keep" for folder in (beside, elsewhere))


def test_a_plain_resume_keeps_a_commented_run_config(finished, tmp_path, capsys):  # noqa: F811
    run = tmp_path / "unfinished"
    shutil.copytree(finished[0], run)
    unfinish(run)
    (run / "report.h5").unlink()
    config = run / "run_config.yaml"
    config.write_text("# my notes on this run\n" + config.read_text())
    commented = config.read_bytes()
    _refused(capsys, "train", "--resume", run, "--set", "finetune.iterations=8")
    assert config.read_bytes() == commented
    from core.cli import main
    assert main(["train", "--resume", str(run)]) == 0                 # the refusal did not spoil the run
    assert config.read_bytes() == commented and (run / "report.h5").is_file()


@pytest.mark.skipif(not hasattr(os, "setxattr"), reason="needs Linux xattrs")
def test_a_replaced_folder_keeps_the_users_attributes(tmp_path):
    out = tmp_path / "tagged"
    out.mkdir()
    try:
        os.setxattr(out, "user.project", b"thesis")
    except OSError:
        pytest.skip("no user xattrs on this file system")
    with staged_folder(out) as tmp:
        (tmp / "0000.png").write_bytes(b"frame")
    assert os.getxattr(out, "user.project") == b"thesis"


def test_a_folder_that_cannot_be_flocked_falls_back_to_a_lock_file(tmp_path, monkeypatch):
    """NFS cannot flock a folder: a lock file of ours in it holds the run folder instead, refused the same way."""
    import errno
    import fcntl
    from core.io import locks

    real = fcntl.flock

    def nfs(fd, how):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return real(fd, how)

    monkeypatch.setattr(fcntl, "flock", nfs)
    busy = lambda pid: OutputError(f"in use (pid {pid})")  # noqa: E731
    with locks.folder_lock(tmp_path, busy):
        assert (tmp_path / locks.FOLDER_LOCK).is_file()
        with pytest.raises(OutputError, match=f"in use \\(pid {os.getpid()}\\)"):
            with locks.folder_lock(tmp_path, busy):
                pass
    assert not (tmp_path / locks.FOLDER_LOCK).exists()


def test_sr_into_a_private_empty_folder_keeps_it_private(capsys, ckpt, clip, tmp_path):  # noqa: F811
    from core.cli import main

    out = tmp_path / "private"
    out.mkdir()
    os.chmod(out, 0o700)
    assert main(["sr", str(ckpt), str(clip), str(out)]) == 0
    assert stat.S_IMODE(os.lstat(out).st_mode) == 0o700 and len(list(out.iterdir())) == 3


def test_a_live_writers_partial_is_never_swept_even_when_its_lock_file_was_deleted(tmp_path):
    """A second writer (its lock taken after the first's lock file was deleted) sweeps only partials whose writer
    is dead: the live one's work in progress survives, a killed one's leftover goes."""
    from core.io.partials import MARKER, new_partial_folder

    target = tmp_path / "out.bin"
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead_writer = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_writer.wait()
    try:
        live, dead = new_partial_folder(target), new_partial_folder(target)
        for folder, pid in ((live, live_writer.pid), (dead, dead_writer.pid)):
            (folder / MARKER).write_text(f"{pid}\n")
            (folder / "0001.png").write_bytes(b"frame")
        write_text(target, "new", overwrite=True)
        assert (live / "0001.png").read_bytes() == b"frame" and not dead.exists()
    finally:
        live_writer.kill()
        live_writer.wait()


def test_a_live_streaming_scratch_beside_the_output_is_never_swept(tmp_path):
    """sr's scratch folder beside its output (named like a partial) while its run holds it: a second writer of
    that output (after the lock file was deleted) leaves it alone."""
    from core.stream.scratch import scratch_dir

    target = tmp_path / "out"
    with scratch_dir(tmp_path, prefix=f".{target.name}.partial-") as scratch:
        write_text(target, "new", overwrite=True)
        assert scratch.path.is_dir()

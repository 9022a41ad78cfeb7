"""The one rule for outputs: never over an input or the user's files, built aside, moved in only when complete."""
from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.io.output import OutputError, append_text, claim_output, staged_file, staged_folder, write_text
from tests.helpers import small_disk

ROOT = Path(__file__).resolve().parents[1]


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".partial-" in p.name]


# -- claiming --------------------------------------------------------------------------------------------------
def test_an_input_is_never_an_output(tmp_path):
    src = tmp_path / "clip"
    src.mkdir()
    (src / "0001.png").write_bytes(b"frame")
    for out, words in ((src, "is an input"), (src / "sr", "inside the input"), (tmp_path, "holds the input")):
        with pytest.raises(OutputError, match=words):
            claim_output(out, kind="folder", inputs=[src], overwrite=True)


def test_a_hard_link_to_the_input_is_the_input(tmp_path):
    src = tmp_path / "a.pth"
    src.write_bytes(b"weights")
    os.link(src, tmp_path / "b.pth")
    with pytest.raises(OutputError, match="is an input"):
        claim_output(tmp_path / "b.pth", inputs=[src], overwrite=True)


def test_existing_files_need_overwrite(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(OutputError, match="already exists.*--overwrite"):
        claim_output(notes)
    assert claim_output(notes, overwrite=True) == notes.resolve()
    full = tmp_path / "frames"
    full.mkdir()
    (full / "x.png").write_bytes(b"x")
    with pytest.raises(OutputError, match="already holds files"):
        claim_output(full, kind="folder")
    (tmp_path / "empty").mkdir()
    claim_output(tmp_path / "empty", kind="folder")


def test_kind_mismatch_and_unwritable_parents(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a folder"):
        claim_output(tmp_path / "d", overwrite=True)
    with pytest.raises(OutputError, match="is an existing file"):
        claim_output(tmp_path / "f", kind="folder", overwrite=True)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        claim_output(tmp_path / "f" / "sub" / "out.pth")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path / "d" else real_access(p, mode))
    with pytest.raises(OutputError, match="read-only or not writable"):
        claim_output(tmp_path / "d" / "out.pth")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_before_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    with pytest.raises(OutputError, match="read-only"):
        claim_output(ro / "out.pth")


# -- staged files ------------------------------------------------------------------------------------------------
def test_file_appears_only_when_complete_with_umask_permissions(tmp_path):
    target = tmp_path / "sub" / "model.pth"
    with staged_file(target) as tmp:
        assert tmp.parent.parent == target.parent and tmp.name.startswith(".model.pth.partial-") and tmp.suffix == ".pth"
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc" and not _partials(target.parent)
    old = os.umask(0o022)
    os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~old


@pytest.mark.parametrize("failure", ["exception", "verify", "enospc", "interrupt"])
def test_a_failed_write_keeps_the_previous_file(tmp_path, failure):
    target = tmp_path / "model.pth"
    target.write_bytes(b"previous")

    def reject(_: Path) -> None:
        raise OutputError("verification failed")

    with pytest.raises((OutputError, RuntimeError, KeyboardInterrupt)) as err:
        with staged_file(target, overwrite=True, verify=reject if failure == "verify" else None) as tmp:
            tmp.write_bytes(b"half")
            if failure == "exception":
                raise RuntimeError("encoder crashed")
            if failure == "enospc":
                raise OSError(errno.ENOSPC, "No space left on device")
            if failure == "interrupt":
                raise KeyboardInterrupt
    if failure == "enospc":
        assert "disk is full" in str(err.value) and "\n" not in str(err.value)
    assert target.read_bytes() == b"previous"
    assert not _partials(tmp_path)


def test_no_clobber_when_a_file_appears_meanwhile(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(OutputError, match="appeared while"):
        with staged_file(target) as tmp:
            tmp.write_bytes(b"new")
            target.write_bytes(b"someone else's")
    assert target.read_bytes() == b"someone else's"


def test_second_writer_is_refused(tmp_path):
    target = tmp_path / "clip.mp4"
    with staged_file(target) as tmp:
        tmp.write_bytes(b"a")
        with pytest.raises(OutputError, match="another process is writing"):
            with staged_file(target):
                pass
    assert target.read_bytes() == b"a"
    with staged_file(target, overwrite=True) as tmp:     # released: the next writer goes ahead
        tmp.write_bytes(b"b")
    assert target.read_bytes() == b"b"


_WRITER = textwrap.dedent("""
    import sys, time
    from core.cli import _terminate_like_interrupt
    from core.io.output import staged_file, staged_folder
    _terminate_like_interrupt()      # as the CLI does: SIGTERM unwinds like Ctrl-C
    kind, target = sys.argv[1], sys.argv[2]
    stage = staged_file(target, overwrite=True) if kind == "file" else staged_folder(target, overwrite=True)
    with stage as tmp:
        if kind == "file":
            tmp.write_bytes(b"new but unfinished")
        else:
            (tmp / "0000.png").write_bytes(b"new frame")
        print("writing", flush=True)
        time.sleep(60)
""")


def _start_writer(kind: str, target: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, kind, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_killed_writer_leaves_previous_output_and_nothing_that_looks_finished(tmp_path, sig, kind):
    target = tmp_path / ("model.pth" if kind == "file" else "frames")
    if kind == "file":
        target.write_bytes(b"previous")
    else:
        target.mkdir()
        (target / "0000.png").write_bytes(b"user frame")
    proc = _start_writer(kind, target)
    # while it writes, a second process is refused
    with pytest.raises(OutputError, match="another process"):
        with staged_file(target, overwrite=True) if kind == "file" else staged_folder(target, overwrite=True):
            pass
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert (target.read_bytes() if kind == "file" else (target / "0000.png").read_bytes()) in (b"previous",
                                                                                                b"user frame")
    leftovers = _partials(tmp_path)
    if sig == signal.SIGKILL:   # only a hidden partial can remain, and the next writer sweeps it
        assert all(p.name.startswith(".") for p in leftovers)
    else:
        assert leftovers == []
    if kind == "file":
        write_text(target, "rerun", overwrite=True)
        assert target.read_text() == "rerun"
    else:
        with staged_folder(target, overwrite=True) as tmp:
            (tmp / "0000.png").write_bytes(b"rerun")
        assert (target / "0000.png").read_bytes() == b"rerun"
    assert _partials(tmp_path) == []


def test_full_disk_on_a_real_small_filesystem(tmp_path):
    with small_disk(tmp_path, "256k") as mnt:
        target = mnt / "video.bin"
        target.write_bytes(b"previous")
        with pytest.raises(OutputError, match="disk is full"):
            with staged_file(target, overwrite=True) as tmp:
                with open(tmp, "wb") as fh:
                    fh.write(os.urandom(1024 * 1024))
        assert target.read_bytes() == b"previous" and not _partials(mnt)


# -- staged folders ------------------------------------------------------------------------------------------------
def test_folder_moves_in_whole_and_replaces_only_with_overwrite(tmp_path):
    target = tmp_path / "out"
    target.mkdir()       # an empty folder the user made for us is fine
    with staged_folder(target) as tmp:
        (tmp / "a.png").write_bytes(b"1")
        assert not (target / "a.png").exists()
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]
    with pytest.raises(OutputError, match="already holds files"):
        with staged_folder(target):
            pass
    with pytest.raises(RuntimeError):
        with staged_folder(target, overwrite=True) as tmp:
            (tmp / "b.png").write_bytes(b"2")
            raise RuntimeError("model failed mid-clip")
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]       # the previous result is whole
    with staged_folder(target, overwrite=True) as tmp:
        (tmp / "b.png").write_bytes(b"2")
    assert sorted(p.name for p in target.iterdir()) == ["b.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_append_text_creates_folders(tmp_path):
    log = tmp_path / "run" / "train.log"
    append_text(log, "a\n")
    append_text(log, "b\n")
    assert log.read_text() == "a\nb\n"


WRITERS = ("open(", ".write_bytes(", ".write_text(", "torch.save(", "h5py.File(", "cv2.imwrite(", "av.open(",
           "cv2.VideoWriter(", ".save(")


OUTPUT_RULE = {f"core/io/{name}.py" for name in ("output", "disk", "locks", "partials", "swap", "folder_identity")}


def test_nothing_else_opens_files_for_writing():
    """One module owns writes: elsewhere in core/ and app/ a writer may only write to a staged temporary path,
    to memory, or to a private scratch folder (marked ``# scratch:`` where it happens)."""
    offenders = []
    for path in sorted((ROOT / "core").rglob("*.py")) + sorted((ROOT / "app").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() in OUTPUT_RULE:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            writes = any(w in code for w in WRITERS) and any(m in code for m in ('"w', "'w", '"a"', "'a'", "save(",
                                                                                   "write_"))
            exempt = "tmp" in code or "self.save()" in code or "BytesIO" in code or "# scratch:" in line
            if writes and not exempt:
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "writes outside core/io/output.py:\n" + "\n".join(offenders)

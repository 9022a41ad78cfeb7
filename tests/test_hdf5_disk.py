"""HDF5 outputs (the training cache ``data.cache``, the ``export --format h5`` report) on a disk that fills or
fails mid-write: one line naming the disk, exit 2, no partial file, the previous file untouched — and no crash.

Why a crash is possible at all: when HDF5's own writes fail, h5py is left with object ids that cannot be closed,
and freeing them later prints tracebacks and kills the process (SIGSEGV/SIGBUS, h5py #914/#2160). Seen on a full
tmpfs before ``core.io.h5write``: `train` with a cache ended in exit 135 after its one-line error.

Two ways of filling the disk: ``FillingDisk`` plays the kernel's part (a short write, then ENOSPC / EDQUOT / EIO)
for the writes into our partial files and runs everywhere; ``small_disk`` mounts a real tmpfs (root only) and
runs the writer in a child process, where a crash shows as its exit status.
"""
from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import core.io.output as output
from core.cli import main
from core.deploy import write_report_h5
from core.io.h5cache import build_cache, cache_is_current
from core.io.output import OutputError
from tests.conftest import ROOT
from tests.helpers import small_disk as mount_small_disk
from tests.test_disk_errors import _one_line, _ours
from tests.test_no_data_loss import ckpt  # noqa: F401  (fixture)

TINY_YAML = str(ROOT / "resources" / "configs" / "tiny.yaml")
FRAME = (600, 700, 3)          # 1.26 MB: more than HDF5's 1 MiB chunk cache, so each frame goes to the disk at once


class FillingDisk:
    """The kernel's answer once the disk is full, for writes into our partial files (``.NAME.partial-XXXX``):
    ``room`` more bytes are taken (the write that crosses it comes back short), then every write fails with
    ``code``. Other files (locks, the run folder, the old output) are written normally."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room: int, code: int = errno.ENOSPC) -> None:
        self.room, self.code, self.refused = room, code, 0
        self._fds: set[int] = set()
        real_open, real_pwrite, real_close = os.open, os.pwrite, os.close

        def opened(path, flags, *args, **kwargs):
            fd = real_open(path, flags, *args, **kwargs)
            if output.PARTIAL in os.path.basename(os.fsdecode(path)) and flags & (os.O_WRONLY | os.O_RDWR):
                self._fds.add(fd)
            return fd

        def pwrite(fd, data, offset):
            if fd not in self._fds:
                return real_pwrite(fd, data, offset)
            if self.room <= 0:
                self.refused += 1
                raise OSError(self.code, os.strerror(self.code))
            written = real_pwrite(fd, memoryview(data)[:self.room], offset)
            self.room -= written
            return written

        def closed(fd):
            self._fds.discard(fd)
            return real_close(fd)

        monkeypatch.setattr(os, "open", opened)
        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "close", closed)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frames(count: int, pulled: list[int]):
    """``count`` random frames of FRAME; ``pulled`` counts how many the writer asked for."""
    def frames():
        rng = np.random.default_rng(len(pulled))
        for _ in range(count):
            pulled.append(1)
            yield rng.integers(0, 256, FRAME, dtype=np.uint8)
    return frames


def _old_cache(path: Path) -> str:
    """A complete cache of ours with the fingerprint "old" (a rebuild may replace it); its digest."""
    build_cache(path, [("gt/a", 1, (4, 4, 3), lambda: iter([np.zeros((4, 4, 3), np.uint8)]))], "old")
    return _digest(path)


WORDS = {errno.ENOSPC: "disk is full", errno.EDQUOT: "quota", errno.EIO: "input/output"}
CODES = pytest.mark.parametrize("code", sorted(WORDS), ids=lambda c: errno.errorcode[c])


# -- the training cache ----------------------------------------------------------------------------------------
@CODES
@pytest.mark.parametrize("frames_that_fit", [0, 2.5], ids=["at-the-first-write", "mid-build"])
def test_a_cache_build_the_disk_refuses_is_one_line_and_keeps_the_old_cache(tmp_path, monkeypatch, code,
                                                                           frames_that_fit):
    path = tmp_path / "cache.h5"
    before = _old_cache(path)
    disk = FillingDisk(monkeypatch, int(frames_that_fit * np.prod(FRAME)), code)
    pulled: list[int] = []
    with pytest.raises(OutputError) as err:
        build_cache(path, [("gt/a", 8, FRAME, _frames(8, pulled))], "new")
    text = _one_line(err.value)
    assert WORDS[code] in text and str(output._disk_of(tmp_path)) in text and str(path) in text, text
    assert "nothing was replaced" in text and disk.refused
    assert len(pulled) <= int(frames_that_fit) + 1, "the build went on after the disk refused a frame"
    assert _digest(path) == before and cache_is_current(path, "old")
    assert _ours(tmp_path) == [] and [p.name for p in tmp_path.iterdir()] == ["cache.h5"]


def test_a_cache_that_fits_is_complete(tmp_path, monkeypatch):
    """The guard is no cost to a build with room: same frames back, the fingerprint last."""
    FillingDisk(monkeypatch, 10 * int(np.prod(FRAME)))
    path = tmp_path / "cache.h5"
    _old_cache(path)
    pulled: list[int] = []
    build_cache(path, [("gt/a", 3, FRAME, _frames(3, pulled))], "new")
    from core.io.h5cache import H5Frames

    again = np.stack(list(_frames(3, [])()))
    assert cache_is_current(path, "new") and np.array_equal(H5Frames(path).read("gt/a", 0, 3), again)
    assert _ours(tmp_path) == []


# A child (a crash there is its exit status, not the end of the test run): Ctrl-C (or SIGTERM, which the CLI
# raises as KeyboardInterrupt) inside each of HDF5's writes in turn, the ones its close makes included, for the
# cache build and for a writer whose chunks wait in HDF5's chunk cache until the close.
CTRL_C_CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    from core.io.h5cache import build_cache
    from core.io.h5write import staged_hdf5
    folder = sys.argv[1]
    real_open, real_pwrite, real_close = os.open, os.pwrite, os.close
    fds, calls, at = set(), [], [None]

    def opened(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if ".partial-" in os.path.basename(os.fsdecode(path)) and flags & os.O_RDWR:
            fds.add(fd)
        return fd

    def pwrite(fd, data, offset):
        if fd in fds:
            calls.append(len(data))
            if len(calls) == at[0]:
                raise KeyboardInterrupt
        return real_pwrite(fd, data, offset)

    def closed(fd):
        fds.discard(fd)
        return real_close(fd)

    os.open, os.pwrite, os.close = opened, pwrite, closed
    frame = np.arange(600 * 700 * 3, dtype=np.uint8).reshape(600, 700, 3)

    def cache(path):
        build_cache(path, [("gt/a", 2, frame.shape, lambda: iter([frame, frame])),
                           ("lr/a", 2, (6, 7, 3), lambda: iter([frame[:6, :7]] * 2))], "new")

    def chunk_cached(path):
        with staged_hdf5(path, overwrite=True) as out:
            ds = out.file.create_dataset("a", shape=(4, 256), dtype=np.float32, chunks=(1, 256))
            for i in range(4):
                ds[i] = i

    for name, write in (("cache", cache), ("chunk-cached", chunk_cached)):
        path = os.path.join(folder, name + ".h5")
        write(path)
        before, writes = open(path, "rb").read(), len(calls)
        for k in range(1, writes + 1):
            calls.clear()
            at[0] = k
            try:
                write(path)
                print(name, k, "no-exception")
            except BaseException as e:
                print(name, k, type(e).__name__)
            assert open(path, "rb").read() == before, (name, k)
            at[0] = None
        calls.clear()
    print(" ".join(sorted(os.listdir(folder))))
""")


def test_ctrl_c_inside_any_hdf5_write_unwinds_as_ctrl_c(tmp_path):
    """A Ctrl-C that lands inside one of HDF5's writes is held until HDF5 has let go of the file, then unwinds
    like anywhere else (``interrupted``, exit 130). Raised inside HDF5's close it was a SystemError and a
    segfault. The partial file goes, the old file stays (checked in the child)."""
    proc = subprocess.run([sys.executable, "-c", CTRL_C_CHILD, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    *runs, left = proc.stdout.strip().splitlines()
    assert len(runs) > 20 and {r.split()[0] for r in runs} == {"cache", "chunk-cached"}
    assert [r for r in runs if not r.endswith(" KeyboardInterrupt")] == [] and proc.stderr == "", proc.stderr
    assert left.split() == ["cache.h5", "chunk-cached.h5"]


def test_what_hdf5_wrote_after_a_refusal_reads_back(tmp_path, monkeypatch):
    """After the disk refused a write, HDF5 still reads back what it wrote (a large build re-reads metadata it
    evicted): the held bytes lie over the file, so HDF5 sees one consistent file and closes cleanly."""
    from core.io.h5write import _GuardedFile

    path = tmp_path / ".x.partial-abcdefgh"
    path.write_bytes(b"")
    FillingDisk(monkeypatch, 120)
    f = _GuardedFile(path)
    f.seek(0)
    f.write(b"A" * 100)
    f.seek(50)
    f.write(b"B" * 100)                                   # 20 bytes fit, then the disk refuses: the rest held
    f.seek(300)
    f.write(b"C" * 10)                                    # after the refusal: held, past the end
    f.seek(0)
    assert f.read(400) == b"A" * 50 + b"B" * 100 + bytes(150) + b"C" * 10 + bytes(90)
    assert f.seek(0, os.SEEK_END) == 310 and f.truncate(200) == 200 and f.seek(0, os.SEEK_END) == 200
    with pytest.raises(OSError) as err:
        f.check()
    assert err.value.errno == errno.ENOSPC and path.read_bytes() == b"A" * 50 + b"B" * 20 + b"A" * 30
    f.close()


def test_train_with_a_cache_on_a_full_disk_exits_2(capsys, tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "frames.h5"
    cache.parent.mkdir()
    FillingDisk(monkeypatch, 3 * 256 * 448 * 3)
    argv = ["train", TINY_YAML, "--run-dir", str(tmp_path / "run"), "--stages", "pretrain", "--device", "cpu",
            "--set", f"data.cache={cache}", "--set", "pretrain.iterations=1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "disk is full" in err and str(cache) in err, err
    assert str(output._disk_of(tmp_path)) in err and list(cache.parent.iterdir()) == []


# -- the HDF5 report ------------------------------------------------------------------------------------------
@CODES
@pytest.mark.parametrize("room", [0, 3000], ids=["at-the-first-write", "mid-file"])
def test_a_report_the_disk_refuses_is_one_line_and_keeps_the_old_report(tmp_path, monkeypatch, code, room):
    target = tmp_path / "r.h5"
    write_report_h5(target, None, {"psnr": [29.0]}, {"source": "old"})
    before = _digest(target)
    disk = FillingDisk(monkeypatch, room, code)
    with pytest.raises(OutputError) as err:
        write_report_h5(target, None, {"psnr": np.linspace(20, 40, 2000)}, {"source": "new"}, overwrite=True)
    text = _one_line(err.value)
    assert WORDS[code] in text and str(output._disk_of(tmp_path)) in text and str(target) in text, text
    assert disk.refused and _digest(target) == before and _ours(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]


@pytest.mark.parametrize("room", [0, 3000])
def test_export_h5_onto_a_full_disk_exits_2_and_keeps_the_old_report(capsys, ckpt, tmp_path, monkeypatch, room):
    out = tmp_path / "report.h5"
    out.write_bytes(b"previous report")
    FillingDisk(monkeypatch, room)
    assert main(["export", str(ckpt), "--format", "h5", "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert "disk is full" in err and str(output._disk_of(tmp_path)) in err
    assert out.read_bytes() == b"previous report" and _ours(tmp_path) == []


# -- on a real full disk (a small tmpfs; needs root) ------------------------------------------------------------
@pytest.fixture()
def small_disk(tmp_path):
    """A 512 KiB tmpfs, unmounted after the test; skips where it cannot be mounted."""
    with mount_small_disk(tmp_path, "512k") as mnt:
        yield mnt


# The writer runs in a child that ends like the CLI: one line and exit 2 on a UserError, then the interpreter's
# own exit, where h5py frees whatever the exception held (the crash came there).
CHILD = textwrap.dedent("""
    import os, sys
    import numpy as np
    from core.errors import UserError
    mnt, what, free = sys.argv[1], sys.argv[2], int(sys.argv[3])
    target = os.path.join(mnt, "out.h5")
    if what == "cache":
        from core.io.h5cache import build_cache
        one = lambda: iter([np.zeros((4, 4, 3), np.uint8)])
        build_cache(target, [("gt/a", 1, (4, 4, 3), one)], "old")
        frames = lambda: (np.full((128, 128, 3), i, np.uint8) for i in range(30))
        write = lambda: build_cache(target, [("gt/a", 30, (128, 128, 3), frames)], "new")
    else:
        from core.deploy import write_report_h5
        from core.ssl import compute_scores, make_plan
        from tests.helpers import tiny_model
        plan = make_plan(compute_scores(tiny_model("basicvsr", 16, 2)), 0.5, frame_size=(32, 32))
        write_report_h5(target, None, {"psnr": [1.0]})
        write = lambda: write_report_h5(target, plan, {"psnr": [30.0, 31.0]}, overwrite=True)
    with open(target, "rb") as fh:
        before = fh.read()
    vfs = os.statvfs(mnt)
    with open(os.path.join(mnt, "filler"), "wb") as fh:
        fh.write(bytes(max(0, vfs.f_bavail * vfs.f_frsize - free)))
    try:
        write()
        code = 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 2
    with open(target, "rb") as fh:
        assert fh.read() == before, "the previous file changed"
    print(" ".join(sorted(os.listdir(mnt))))
    sys.exit(code)
""")


@pytest.mark.parametrize("what, free", [("cache", 0), ("cache", 64 << 10), ("cache", 256 << 10),
                                        ("report", 8 << 10), ("report", 16 << 10)])
def test_a_real_full_disk_is_one_line_and_exit_2(small_disk, what, free):
    proc = subprocess.run([sys.executable, "-c", CHILD, str(small_disk), what, str(free)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.startswith("error: cannot write ") and f"disk is full: no space left on the file system " \
        f"at {small_disk}" in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["filler", "out.h5"]

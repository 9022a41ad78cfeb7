"""Scratch folders: a killed run's leftovers are swept by the next run, a live run's never; RAM disks are avoided."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.stream import scratch as scratch_mod
from core.stream.scratch import default_scratch_parent, scratch_dir
from tests.conftest import ROOT

HOLDER = """
import sys, time
from core.stream.scratch import scratch_dir
with scratch_dir(sys.argv[1]) as s:
    (s.path / "backward.bin").write_bytes(b"x" * 4096)
    print(s.path, flush=True)
    time.sleep(120)
"""

pytestmark = pytest.mark.skipif(scratch_mod.fcntl is None, reason="no fcntl: orphans are not swept on this OS")


def _hold(where: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(where)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_a_killed_runs_scratch_is_swept_and_a_live_runs_is_kept(tmp_path):
    (tmp_path / "mine.bin").write_bytes(b"the user's")
    (tmp_path / ".ssl-vsr-scratch-notours").mkdir()        # our prefix but no owner lock: not ours to remove
    killed, killed_dir = _hold(tmp_path)
    live, live_dir = _hold(tmp_path)
    try:
        killed.kill()
        killed.wait(timeout=30)
        assert killed_dir.is_dir()                          # SIGKILL runs no cleanup
        with scratch_dir(tmp_path) as s:
            assert s.path.is_dir()
            assert not killed_dir.exists()
            assert live_dir.is_dir() and (live_dir / "backward.bin").stat().st_size == 4096
        assert not s.path.exists()
    finally:
        live.kill()
        live.wait(timeout=30)
    assert (tmp_path / "mine.bin").read_bytes() == b"the user's"
    assert (tmp_path / ".ssl-vsr-scratch-notours").is_dir()


def test_scratch_avoids_a_ram_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(scratch_mod, "_filesystem_type", lambda path: "tmpfs")
    assert default_scratch_parent() == tmp_path / "cache" / "ssl-vsr" / "scratch"
    monkeypatch.setattr(scratch_mod, "_filesystem_type", lambda path: "ext4")
    assert default_scratch_parent() == Path(scratch_mod.tempfile.gettempdir())


def test_filesystem_type_reads_the_longest_mount():
    if not Path("/proc/self/mounts").exists():
        pytest.skip("no /proc/self/mounts on this OS")
    assert scratch_mod._filesystem_type(Path("/proc/self")) == "proc"


def test_the_sweep_does_not_wait_on_a_live_lock(tmp_path):
    live, live_dir = _hold(tmp_path)
    try:
        start = time.monotonic()
        with scratch_dir(tmp_path):
            pass
        assert time.monotonic() - start < 5 and live_dir.is_dir()
    finally:
        live.kill()
        live.wait(timeout=30)

"""int8 working files swept like the tool's other partials (issue 29, item 8): a ``kill -9`` during an int8 export
left its ``ssl-vsr-int8-*`` temp folder for ever. The folder now holds a lock while its process lives, and the
next quantization removes every such folder whose process is gone — never a live one, never a user's folder."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from core.deploy.int8_work import INT8_PREFIX, int8_work_dir
from core.stream.scratch import default_scratch_parent
from tests.conftest import ROOT

_HOLD = """
import sys, time
from core.deploy.int8_work import int8_work_dir
with int8_work_dir() as work:
    (work / "graph.onnx").write_bytes(b"x" * 4096)
    print(work, flush=True)
    time.sleep(600)
"""


@pytest.fixture()
def temp_home(tmp_path, monkeypatch):
    """The system temp folder (and cache, were it a RAM disk) in this test's folder, here and in children."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("tempfile.tempdir", None)
    (tmp_path / "tmp").mkdir()
    return default_scratch_parent()


def _holder() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    return proc, proc.stdout.readline().strip()


def test_a_killed_quantization_leaves_a_folder_the_next_one_removes(temp_home):
    proc, left = _holder()
    try:
        assert os.path.isdir(left) and os.path.basename(left).startswith(INT8_PREFIX)
        with int8_work_dir():
            assert os.path.isdir(left)                     # alive: its folder is kept
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert os.path.isdir(left)                             # a kill -9 runs no clean-up
    with int8_work_dir() as work:
        assert not os.path.exists(left) and work.is_dir()
    assert not work.exists()
    assert [p.name for p in temp_home.iterdir()] == []


def test_a_users_folder_named_like_ours_is_kept(temp_home):
    mine = temp_home / f"{INT8_PREFIX}notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with int8_work_dir():
        pass
    assert (mine / "keep.txt").read_text() == "mine"

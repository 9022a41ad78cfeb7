"""Bounded reads (issue 29): a plan or config is read only from a regular file and only up to its limit, so
``/dev/zero``, a FIFO, a device or a link loop is refused in one line at once, in little memory, with every file
the user had unchanged and no run folder made."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.io.limits import decode_peak
from tests.conftest import ROOT
from tests.trust_support import checksums, refused, refused_measured

TINY_YAML = Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml"


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link_loop(path: Path) -> Path:
    (path.parent / "other").symlink_to(path.name)
    path.symlink_to("other")
    return path


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.symlink_to("/dev/zero"), r"plan\.json: is a character device, not a plan file"),
    (_fifo, r"plan\.json: is a named pipe \(FIFO\), not a plan file"),
])
def test_a_plan_that_never_ends_is_refused_at_once_in_little_memory(tmp_path, make, pattern):
    """The tester's cases: ``--plan /dev/zero`` grew to 1.9 GB in 4.5 s; a FIFO plan hung for ever."""
    make(tmp_path / "plan.json")
    before = checksums(tmp_path, TINY_YAML)
    refused_measured(["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"], pattern)
    assert checksums(tmp_path, TINY_YAML) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.symlink_to("/dev/zero"), r"c\.yaml: is a character device, not a config file"),
    (_fifo, r"c\.yaml: is a named pipe \(FIFO\), not a config file"),
    (_link_loop, r"c\.yaml: cannot read the config \(a loop of symbolic links\)"),
])
def test_a_config_that_is_no_file_is_refused_at_once_in_little_memory(tmp_path, make, pattern):
    make(tmp_path / "c.yaml")
    before = checksums(tmp_path)
    refused_measured(["train", tmp_path / "c.yaml", "--run-dir", tmp_path / "run"], pattern)
    assert checksums(tmp_path) == before and not (tmp_path / "run").exists()


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.symlink_to("/dev/zero"), r"run_config\.yaml is a symbolic link where the run writes its own file"),
    (_fifo, r"run_config\.yaml: is a named pipe \(FIFO\), not a config file"),
])
def test_a_resumed_runs_config_that_is_no_file_is_refused_at_once(tmp_path, make, pattern):
    """``--resume DIR`` reads DIR/run_config.yaml: the same bounded read as any config (and never through a link:
    that is refused before it is read)."""
    run = tmp_path / "run"
    run.mkdir()
    (run / ".ssl-vsr-run").write_text("ssl-vsr run\n")
    make(run / "run_config.yaml")
    before = checksums(tmp_path)
    refused_measured(["train", "--resume", run], pattern)
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("kind", ["folder", "reds", "vimeo"])
def test_a_data_root_that_is_a_named_pipe_is_no_folder_of_frames(tmp_path, capsys, kind):
    """A FIFO as ``data.root`` said a Vimeo-90K list was missing, or ended in a REDS traceback."""
    pipe = _fifo(tmp_path / "pipe")
    refused(capsys, ["train", TINY_YAML, "--run-dir", tmp_path / "run", "--set", f"data.root={pipe}",
                     "--set", f"data.kind={kind}"], r"dataset .*pipe is a named pipe \(FIFO\), not a folder of frames$")
    assert not (tmp_path / "run").exists()


def test_a_plan_link_loop_and_a_plan_folder_are_one_line(tmp_path, capsys):
    _link_loop(tmp_path / "plan.json")
    (tmp_path / "dir.json").mkdir()
    before = checksums(tmp_path)
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"],
            r"plan\.json: cannot read the plan \(a loop of symbolic links\)")
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "dir.json", "--run-dir", tmp_path / "run"],
            r"dir\.json: is a folder, not a plan file")
    assert checksums(tmp_path) == before and not (tmp_path / "run").exists()


def test_a_plan_past_its_limit_is_refused_by_its_size(tmp_path, capsys, monkeypatch):
    import core.train.cli as train_cli

    monkeypatch.setattr(train_cli, "MAX_PLAN_BYTES", 64)
    (tmp_path / "plan.json").write_text('{"settings": {"ratio": 0.5}}' + " " * 64)
    refused(capsys, ["train", TINY_YAML, "--plan", tmp_path / "plan.json", "--run-dir", tmp_path / "run"],
            r"plan\.json: refused, 92 bytes is more than a plan holds \(limit 64\)")
    assert not (tmp_path / "run").exists()


# -- decoded-image memory: the stated bound is the peak --------------------------------------------------------
_READ_ONE = """
import json, sys
from core.io.image_file import read_frame

def high_water_kib():       # this image's own peak (ru_maxrss can carry the forking parent's size)
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))

import cv2, numpy as np      # the codec's first call maps its code and thread stacks: not the frame's memory
cv2.imdecode(cv2.imencode(".png", np.zeros((8, 8, 4), np.uint16))[1], cv2.IMREAD_UNCHANGED)
base = high_water_kib()
frame, notes = read_frame(sys.argv[1])
peak = high_water_kib()
print(json.dumps({"grew_mib": (peak - base) / 1024, "shape": list(frame.shape), "notes": notes}))
"""


@pytest.mark.parametrize("channels, depth", [(4, np.uint16), (3, np.uint16), (1, np.uint16), (3, np.uint8)])
def test_reading_a_frame_stays_within_its_stated_peak(tmp_path, channels, depth):
    """A 16-bit frame converted whole took 6 times its own size in temporaries (3.4 GB for 512 MiB)."""
    h, w = 3000, 4000
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), np.full((h, w, channels), 7, depth).squeeze())
    assert path.stat().st_size < 1 << 20                   # a small file, a large frame
    proc = subprocess.run([sys.executable, "-c", _READ_ONE, str(path)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    result = json.loads(proc.stdout)
    assert result["shape"] == [h, w, 3]
    stated = decode_peak(w, h, channels * np.dtype(depth).itemsize, path.stat().st_size) / 2**20
    assert result["grew_mib"] <= stated + 8, (result, stated)


@pytest.mark.parametrize("shape", [(8192, 8192, 4), (8192, 8192, 3), (7500, 8192, 3)])
def test_a_16_bit_frame_whose_reading_would_pass_the_bound_is_refused_in_little_memory(tmp_path, shape):
    """The tester's 522 KB 16-bit PNG: within the pixel and buffer limits, 3.4 GB to read; now refused by its
    header, before decoding, in one line."""
    from tests.test_untrusted_files import forged_png

    h, w, c = shape
    clip = tmp_path / "clip"
    clip.mkdir()
    for i in range(2):
        (clip / f"{i}.png").write_bytes(forged_png(w, h, depth=16, colour=6 if c == 4 else 2))
    before = checksums(clip)
    refused_measured(["sr", _tiny_model(tmp_path), clip, tmp_path / "out"],
                     rf"0\.png: a {h}x{w} \(HxW\) frame of {2 * c} bytes per pixel needs [\d,]+ MiB to read "
                     rf"\(decoded and converted to 8-bit RGB\), more than the limit of 512 MiB")
    assert checksums(clip) == before and not (tmp_path / "out").exists()


def _tiny_model(folder: Path) -> Path:
    from core.io.checkpoint import save_model
    from tests.helpers import tiny_model

    return save_model(tiny_model("basicvsr-uni", 8, 1), folder / "tiny.pth")

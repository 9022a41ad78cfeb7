"""Each data-loss case found by trying the CLI as a careless user: the user's files come out byte for byte."""
from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.io.demo import demo_clip_dir
from core.io.frames import write_frames
from tests.conftest import ROOT
from tests.helpers import tiny_model
from tests.train_support import tiny_model_file


def _digest(path: Path) -> dict[str, str]:
    """Every file under ``path`` (or the file itself) with its content hash: what 'untouched' means."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p.relative_to(path.parent)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture()
def ckpt(tmp_path):
    path = tmp_path / "dense.pth"
    torch.save({"params": tiny_model("basicvsr", 8, 1).state_dict()}, path)
    return path


@pytest.fixture()
def clip(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
    folder = tmp_path / "clip"
    write_frames(np.stack([np.roll(base, i, axis=1) for i in range(3)]), folder)
    return folder


def _refused(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_sr_never_writes_over_its_input(capsys, ckpt, clip):
    before = _digest(clip)
    _refused(capsys, "sr", ckpt, clip, clip)
    _refused(capsys, "sr", ckpt, clip, clip, "--overwrite")
    assert _digest(clip) == before


def test_sr_into_a_folder_of_the_users_frames_is_refused(capsys, ckpt, clip, tmp_path):
    mine = tmp_path / "mine"
    write_frames(np.zeros((2, 8, 8, 3), np.uint8), mine, names=["0000", "holiday"])
    before = _digest(mine)
    assert "--overwrite" in _refused(capsys, "sr", ckpt, clip, mine)
    assert _digest(mine) == before


def test_two_sr_runs_into_one_folder_do_not_mix(capsys, ckpt, clip, tmp_path):
    out = tmp_path / "out"
    assert main(["sr", str(ckpt), str(clip), str(out)]) == 0
    capsys.readouterr()                 # its progress lines (printed when the run is slow: a loaded machine)
    first = _digest(out)
    other = tmp_path / "other.pth"
    torch.save({"params": tiny_model("basicvsr", 8, 1, seed=1).state_dict()}, other)
    _refused(capsys, "sr", other, clip, out)
    assert _digest(out) == first
    assert main(["sr", str(other), str(clip), str(out), "--overwrite"]) == 0     # replaced as a whole
    assert _digest(out).keys() == first.keys() and _digest(out) != first


def test_prune_never_destroys_the_source_or_a_users_file(capsys, ckpt, tmp_path):
    before = _digest(ckpt)
    _refused(capsys, "prune", ckpt, "--ratio", "0.5", "--out", ckpt)
    _refused(capsys, "prune", ckpt, "--ratio", "0.5", "--out", ckpt, "--overwrite")
    assert _digest(ckpt) == before
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    _refused(capsys, "prune", ckpt, "--ratio", "0.5", "--out", notes)
    assert notes.read_text() == "my notes"
    assert main(["prune", str(ckpt), "--ratio", "0.5", "--out", str(tmp_path / "p.pth")]) == 0
    capsys.readouterr()


def test_export_never_turns_the_model_into_a_report(capsys, ckpt, tmp_path):
    model = tmp_path / "p.pth"
    assert main(["prune", str(ckpt), "--ratio", "0.5", "--out", str(model)]) == 0
    capsys.readouterr()           # the prune's own output (its progress lines) is not the refusal's
    before = _digest(model)
    _refused(capsys, "export", model, "--format", "h5", "--out", model)
    _refused(capsys, "export", model, "--format", "h5", "--out", model, "--overwrite")
    assert _digest(model) == before


def test_train_keeps_the_users_config_in_the_run_folder(capsys, tmp_path):
    weights = tiny_model_file(tmp_path / "w.pth")
    run = tmp_path / "exp"
    run.mkdir()
    config = run / "config.yaml"
    text = (ROOT / "resources" / "configs" / "tiny.yaml").read_text().replace("../demo", str(demo_clip_dir()))
    text += "\n# my own comment\n"
    config.write_text(text)
    args = ["train", str(config), "--run-dir", str(run), "--stages", "sir", "--device", "cpu",
            "--set", f"model.weights={weights}", "--set", "model.num_feat=8", "--set", "model.num_block=1",
            "--set", "model.variant=basicvsr-uni", "--set", "data.clip_length=3", "--set", "data.patch_size=16",
            "--set", "sir.stabilize_iters=1", "--set", "sir.t1=1", "--set", "sir.delta=0.05", "--set", "sir.tau=0.1"]
    assert main(args) == 0
    assert config.read_text() == text and (run / "run_config.yaml").is_file()
    capsys.readouterr()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_interrupted_sr_leaves_nothing_that_looks_complete(ckpt, clip, tmp_path, sig):
    """Stop `sr` while it writes: the user's folder is untouched, no output appears, and a rerun works."""
    import signal

    out = tmp_path / "out"
    # Long enough that the signal lands mid-run on a slow or busy machine too (60 frames ended first in a CI run).
    frames = np.random.default_rng(1).integers(0, 255, (240, 48, 64, 3), dtype=np.uint8)
    long_clip = tmp_path / "long"
    write_frames(frames, long_clip)
    cmd = [sys.executable, str(ROOT / "main.py"), "sr", str(ckpt), str(long_clip), str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    # The scratch folder (it holds ``.owner``) exists only while frames are computed: signal inside that window,
    # not at the staged output's first appearance (a fast run could already be finishing then).
    while time.time() < deadline and not any((p / ".owner").exists() for p in tmp_path.iterdir()
                                             if ".partial-" in p.name):
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=60)
    assert not out.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir() if ".partial-" in p.name)
    if sig == "SIGINT":
        assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    assert len(list(out.iterdir())) == 240

"""The headless CLI: every command end to end on tiny models, JSON output, one-line errors."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from core.cli import main
from core.io.checkpoint import load_checkpoint
from core.io.frames import read_clip, write_frames
from tests.conftest import ROOT
from tests.helpers import official, tiny_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"params": tiny_model("basicvsr", 16, 2).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("clip") / "lr"
    base = rng.integers(0, 255, (24, 28, 3), dtype=np.uint8)
    write_frames(np.stack([np.roll(base, i, axis=1) for i in range(4)]), folder)
    return folder


def run_json(capsys, *argv):
    assert main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info(capsys, ckpt):
    data = run_json(capsys, "info", ckpt, "--size", "64x64")
    assert data["variant"] == "basicvsr" and data["channels"] == 16 and data["blocks"] == 2
    assert data["params"] == tiny_model("basicvsr", 16, 2).count_parameters(False)
    assert data["macs_per_frame"] > 0


def test_info_of_official_weights(capsys):
    data = run_json(capsys, "info", official("REDS4"))
    assert data["params"] == 4_851_011 and data["params_with_spynet"] == 6_291_311
    assert round(data["macs_per_frame"] / 1e9) == 338


def test_sr_to_frames_and_video(capsys, ckpt, clip_dir, tmp_path):
    data = run_json(capsys, "sr", ckpt, clip_dir, tmp_path / "out", "--device", "cpu")
    assert data["frames"] == 4 and data["size"] == [96, 112]
    assert read_clip(tmp_path / "out").frames.shape == (4, 96, 112, 3)
    data = run_json(capsys, "sr", ckpt, clip_dir, tmp_path / "out.avi")
    assert read_clip(tmp_path / "out.avi").frames.shape == (4, 96, 112, 3)


def test_eval_on_a_folder_of_clips(capsys, ckpt, tmp_path):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        gt = rng.integers(0, 255, (3, 64, 80, 3), dtype=np.uint8)
        write_frames(gt, tmp_path / "gt" / name)
        from core.data.degrade import bi_degrade
        write_frames(bi_degrade(gt), tmp_path / "lr" / name)
    data = run_json(capsys, "eval", ckpt, "--lr", tmp_path / "lr", "--gt", tmp_path / "gt", "--y", "--crop", "2")
    assert [c["name"] for c in data["clips"]] == ["a", "b"]
    assert data["mean_psnr"] == pytest.approx(np.mean([c["psnr"] for c in data["clips"]]))
    assert len(data["clips"][0]["frames_psnr"]) == 3


def test_eval_scores_frames_sr_already_made_as_it_scores_the_network(capsys, ckpt, tmp_path):
    """``eval --sr`` mirrors ``eval MODEL --lr``: frames ``sr`` wrote (named 00000000.png ...) against a GT folder
    named otherwise (0.png ... and frame_10.png sorts after frame_9.png), per clip and mean, to the digit."""
    import cv2

    from core.data.degrade import bi_degrade

    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        gt = rng.integers(0, 255, (11, 32, 36, 3), dtype=np.uint8)
        for i, frame in enumerate(gt):
            (tmp_path / "gt" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "gt" / name / f"frame_{i}.png"), frame[..., ::-1])
        write_frames(bi_degrade(gt), tmp_path / "lr" / name)
        assert main(["sr", str(ckpt), str(tmp_path / "lr" / name), str(tmp_path / "sr" / name)]) == 0
    capsys.readouterr()
    by_network = run_json(capsys, "eval", ckpt, "--lr", tmp_path / "lr", "--gt", tmp_path / "gt", "--y")
    by_frames = run_json(capsys, "eval", "--sr", tmp_path / "sr", "--gt", tmp_path / "gt", "--y")
    assert by_frames == by_network


@pytest.mark.parametrize("argv, words", [
    (["eval", "--sr", "{sr}", "--gt", "{gt}", "{ckpt}"], "give a network and its LR clips"),
    (["eval", "{ckpt}", "--gt", "{gt}"], "give a network and its LR clips"),
    (["eval", "--sr", "{sr}", "--gt", "{short}"], "SR frames but 2 GT frames"),
    (["eval", "--sr", "{sr}", "--gt", "{gt}", "--crop", "100000"], "--crop 100000 leaves no pixels"),
])
def test_eval_of_frames_refuses_in_one_line(capsys, ckpt, tmp_path, argv, words):
    rng = np.random.default_rng(3)
    write_frames(rng.integers(0, 255, (3, 32, 36, 3), dtype=np.uint8), tmp_path / "gt")
    write_frames(rng.integers(0, 255, (2, 32, 36, 3), dtype=np.uint8), tmp_path / "short")
    write_frames(rng.integers(0, 255, (3, 32, 36, 3), dtype=np.uint8), tmp_path / "sr")
    paths = {"sr": tmp_path / "sr", "gt": tmp_path / "gt", "short": tmp_path / "short", "ckpt": ckpt}
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err


def test_eval_matches_the_basicsr_reference_on_vid4_calendar(capsys, calendar_dir):
    """REFERENCE.md: BasicVSR_Vimeo90K_BIx4 on calendar, Y, crop 0 -> 23.868054 dB / 0.809396."""
    data = run_json(capsys, "eval", official("Vimeo90K_BIx4"), "--lr", calendar_dir / "BIx4",
                    "--gt", calendar_dir / "GT", "--y", "--crop", "0")
    assert abs(data["mean_psnr"] - 23.868054) <= 0.01
    assert abs(data["mean_ssim"] - 0.809396) <= 1e-3


def test_plan_prune_export_chain(capsys, ckpt, tmp_path, clip_dir):
    plan = run_json(capsys, "plan", ckpt, "--ratio", "0.5", "--size", "32x32", "--align", "1")
    assert abs(plan["achieved_ratio"] - 0.5) < 0.01 and len(plan["layers"]) == 16
    aligned = run_json(capsys, "plan", ckpt, "--ratio", "0.5", "--size", "32x32")     # default: multiples of 8
    assert all(l["kept"] % 8 == 0 for l in aligned["layers"])
    out = tmp_path / "pruned.pth"
    pruned = run_json(capsys, "prune", ckpt, "--ratio", "0.5", "--out", out, "--align", "2")
    assert pruned["params"] < pruned["params_before"]
    loaded = load_checkpoint(out)
    assert loaded.is_pruned and loaded.meta["ratio"] == 0.5
    assert run_json(capsys, "info", out)["pruned"] is True
    assert run_json(capsys, "sr", out, clip_dir, tmp_path / "sr")["frames"] == 4
    data = run_json(capsys, "export", out, "--format", "h5", "--out", tmp_path / "m.h5")   # ONNX: test_deploy_*
    assert data["verified"] and (tmp_path / "m.h5").exists()
    import h5py
    with h5py.File(tmp_path / "m.h5", "r") as f:      # the plan travels inside the pruned model file
        assert len(f["plan/layers"]) == 16 and f["plan"].attrs["after_params"] == pruned["params"]


@pytest.mark.parametrize("argv, message", [
    (["info", "{missing}"], "no such file"),
    (["plan", "{ckpt}", "--ratio", "1.2"], r"outside \[0, 1\)"),
    (["plan", "{ckpt}", "--ratio", "-0.1"], r"outside \[0, 1\)"),
    (["sr", "{ckpt}", "{missing}", "{out}"], "does not exist|no such"),
    (["sr", "{ckpt}", "{empty}", "{out}"], "no image files|no frames|empty"),
    (["sr", "{ckpt}", "{garbage_video}", "{out}"], "cannot read video"),
    (["sr", "{ckpt}", "{clip}", "{out}", "--device", "cuda"], "no CUDA GPU"),
    (["eval", "{ckpt}", "--lr", "{clip}", "--gt", "{empty}"], "no clips|no image files"),
    (["info", "{textfile}"], "not a PyTorch checkpoint"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, ckpt, clip_dir, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.mp4").write_bytes(b"\x00garbage" * 50)
    (tmp_path / "t.txt").write_text("not a model")
    values = {"missing": tmp_path / "missing.pth", "ckpt": ckpt, "out": tmp_path / "o", "empty": tmp_path / "empty",
              "garbage_video": tmp_path / "bad.mp4", "clip": clip_dir, "textfile": tmp_path / "t.txt"}
    if "cuda" in argv and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert main([a.format(**values) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    import re
    assert re.search(message, err), err


def test_the_real_entry_point_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "info", str(tmp_path / "nope.pth")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'nope.pth'}: no such file"


@pytest.mark.parametrize("plan", [["--ratio", "0"], ["--ratio", "1e-300"], ["--ratio", "0.5", "--min-keep", "500"]])
def test_a_prune_that_cuts_nothing_writes_nothing(capsys, ckpt, tmp_path, plan):
    """It wrote an unpruned copy labelled a raw cut (exit 0); train refused the same plans."""
    out = tmp_path / "o.pth"
    assert main(["prune", str(ckpt), *plan, "--no-reconstruct", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "prunes no unit" in err and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_conversion_warning_is_one_line_not_python_source(ckpt, tmp_path):
    """16-bit frames are converted with a warning; it came with the source line that raised it (3 stderr lines
    for one refusal)."""
    import cv2

    rng = np.random.default_rng(4)
    (tmp_path / "lr16").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "lr16" / f"{i:04d}.png"), rng.integers(0, 65535, (24, 28, 3), dtype=np.uint16))
    write_frames(rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8), tmp_path / "gt")
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "eval", str(ckpt), "--lr", str(tmp_path / "lr16"),
                           "--gt", str(tmp_path / "gt")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2                        # a process of its own: pytest does not catch its warnings
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and all(line.startswith("warning: clip lr16") for line in lines[:-1])

"""``study sensitivity`` / ``study sweep`` on the command line: results, files, and one-line errors."""
from __future__ import annotations

import json

import pytest

from core.cli import main
from core.io.checkpoint import save_model
from core.io.frames import write_frames
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.study import load_study

from .study_support import study_model, tiny_clip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("study_cli")
    clip = tiny_clip()
    write_frames(clip.lr, root / "lr")
    write_frames(clip.gt, root / "gt")
    model = study_model()
    save_model(model, root / "tiny.pth")
    save_model(prune_to_plan(model, make_plan(compute_scores(model), 0.5)), root / "pruned.pth")
    return root


def run(capsys, *argv):
    code = main(["study", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_sweep_json_and_saved_file(files, capsys, tmp_path):
    out_file = tmp_path / "sweep.json"
    code, out, err = run(capsys, "sweep", files / "tiny.pth", "--lr", files / "lr", "--gt", files / "gt",
                         "--ratios", "0.3,0.6", "--align", "1", "--max-frames", "2", "--json",
                         "--out", out_file)
    assert code == 0, err
    data = json.loads(out)
    assert [p["label"] for p in data["points"]] == ["dense", "ratio 0.3", "ratio 0.6"]
    assert data["clip"]["reference"] == "ground truth"
    assert load_study(out_file).points[1].params == data["points"][1]["params"]
    code, _, err = run(capsys, "sweep", files / "tiny.pth", "--lr", files / "lr", "--out", out_file)
    assert code == 2 and err.count("\n") == 1 and "already exists" in err


def test_sensitivity_without_gt_says_so(files, capsys):
    code, out, err = run(capsys, "sensitivity", files / "tiny.pth", "--lr", files / "lr", "--ratio", "0.5",
                         "--granularity", "segment", "--max-frames", "2")
    assert code == 0, err
    assert "against the dense model's output" in err
    assert "against dense output" in out and "forward.0-1" in out and "upconv1" in out


@pytest.mark.parametrize("argv, message", [
    (["sweep", "{ckpt}", "--lr", "{lr}", "--ratios", "0.3,half"], "ratio 'half' is not a number"),
    (["sweep", "{ckpt}", "--lr", "{lr}", "--ratios", "0.3,1.5"], "ratio must be a number in [0, 1)"),
    (["sensitivity", "{ckpt}", "--lr", "{lr}", "--ratio", "x"], "--ratio 'x' is not a number"),
    (["sensitivity", "{ckpt}", "--lr", "{lr}", "--granularity", "trunk"], "unknown --granularity 'trunk'"),
    (["sensitivity", "{ckpt}", "--lr", "{lr}", "--criterion", "l7"], "unknown criterion 'l7'"),
    (["sensitivity", "{dir}/missing.pth", "--lr", "{lr}"], "no such checkpoint"),
    (["sensitivity", "{ckpt}", "--lr", "{dir}/nothing"], "does not exist"),
    (["sensitivity", "{dir}/pruned.pth", "--lr", "{lr}"], "already pruned"),
    (["sweep", "{ckpt}", "--lr", "{lr}", "--gt", "{dir}/lr"], "expected 4x the LR"),
    (["sweep", "{ckpt}", "--lr", "{lr}", "--train-lr", "{lr}"], "--train-lr needs --train-gt"),
    ([], "study needs a kind"),
])
def test_bad_input_is_one_line(files, capsys, argv, message):
    argv = [a.format(ckpt=files / "tiny.pth", lr=files / "lr", dir=files) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err

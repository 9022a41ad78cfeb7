"""``study sensitivity`` / ``study sweep`` on the command line: results, files, and one-line errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest

from core.cli import main
from core.io.checkpoint import save_model
from core.io.demo import demo_clip_dir
from core.io.frames import write_frames
from core.progress_bar import ProgressBar
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.study import load_study

from .conftest import ROOT
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
    (root / "loop").symlink_to(root / "loop")
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
    # the file names its inputs, not where they lay on this machine
    assert str(files) not in out_file.read_text() and load_study(out_file).checkpoint == "tiny.pth"
    assert data["checkpoint"] == "tiny.pth"
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
    (["sensitivity", "{ckpt}", "--lr", "{dir}/nothing"], "nothing: no such clip"),
    (["sensitivity", "{ckpt}", "--lr", "{dir}/loop"], "loop: a loop of symbolic links"),
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


def test_defaults_are_quick_and_say_how_to_study_more(files, capsys):
    """The defaults study the first 4 frames and a centre 48x64 LR crop; the flags ask for more."""
    demo = demo_clip_dir()
    code, out, err = run(capsys, "sensitivity", files / "tiny.pth", "--lr", demo / "BIx4", "--gt", demo / "GT",
                         "--granularity", "segment", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["clip"]["frames"] == 4 and data["clip"]["lr_size"] == [48, 64]
    assert "LR centre crop 48x64 of 64x112 (HxW)" in data["notes"]
    assert "note: quick defaults: the first 4 frames, LR centre crop 48x64 of 64x112 (HxW)" in err
    assert "--max-frames all --lr-crop full" in err
    code, out, err = run(capsys, "sweep", files / "tiny.pth", "--lr", demo / "BIx4", "--gt", demo / "GT",
                         "--ratios", "0.5", "--max-frames", "3", "--lr-crop", "full")
    assert code == 0, err
    assert "3 frames, LR HxW 64x112" in out and "quick defaults" not in err


@pytest.mark.parametrize("flag, value, message", [
    ("--max-frames", "1", "--max-frames must be a number of at least 2, or 'all'"),
    ("--lr-crop", "64", "--lr-crop must look like 48x64 (height x width"),
    ("--lr-crop", "4x64", "--lr-crop must look like 48x64"),
])
def test_bad_quick_flags_are_one_line(files, capsys, flag, value, message):
    code, _, err = run(capsys, "sensitivity", files / "tiny.pth", "--lr", files / "lr", flag, value)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


_PIPED = textwrap.dedent("""
    import sys
    from core.progress_bar import ProgressBar
    ProgressBar.LINE_MIN_S = 0.0            # a tiny study ends in a second: print every line it earns
    from core.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_progress_lines_when_stderr_is_a_pipe(files):
    """No terminal (a pipe, a log file): plain progress lines, not silence and not carriage returns."""
    proc = subprocess.run([sys.executable, "-c", _PIPED, "study", "sensitivity", str(files / "tiny.pth"),
                           "--lr", str(files / "lr"), "--gt", str(files / "gt"), "--granularity", "segment",
                           "--threads", "1"], cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = re.findall(r"^sensitivity: (\d+)/(\d+) \((\d+) %\)", proc.stderr, re.MULTILINE)
    assert len(lines) >= 3, proc.stderr
    assert lines[-1][0] == lines[-1][1] and lines[-1][2] == "100"
    assert "\r" not in proc.stderr


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_throttled(monkeypatch):
    """Each 5 % of the work, none within the first 2 s, at least every 30 s; a last line."""
    import io

    clock = _Clock()
    monkeypatch.setattr("core.progress_bar.time.perf_counter", clock)
    stream = io.StringIO()
    bar = ProgressBar("sr clip", stream)
    for done, at in [(1, 0.5), (10, 1.5), (12, 2.6), (13, 3.0), (30, 4.0), (32, 5.0), (34, 40.0), (200, 41.0)]:
        clock.now = at
        bar(done, 200)
    bar.close()
    assert stream.getvalue().splitlines() == ["sr clip: 12/200 (6 %), 3 s, ETA 41 s",
                                              "sr clip: 30/200 (15 %), 4 s, ETA 23 s",
                                              "sr clip: 34/200 (17 %), 40 s, ETA 195 s",
                                              "sr clip: 200/200 (100 %), 41 s"]
    clock.now = 0.0
    quick = io.StringIO()
    bar = ProgressBar("eval", quick)
    for done in range(1, 11):
        clock.now = done * 0.1
        bar(done, 10)
    bar.close()
    assert quick.getvalue() == ""            # a job done within 2 s prints nothing

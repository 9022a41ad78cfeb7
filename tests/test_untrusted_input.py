"""Hostile and careless input: every size it implies is bounded before use, every refusal is one line, exit 2.

The hostile files are built here: stride-0 tensors that claim gigabytes in a few KB, a model file whose JSON
spec asks for 100000 channels, a zip bomb, a YAML alias bomb. The refusals that matter for memory run the
real entry point in a subprocess whose own peak RSS (VmHWM, read inside it at exit) must stay under 500 MB
(the interpreter with torch imported is ~250 MB of it).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.errors import CheckpointError, ConfigError, UserError, one_line
from core.io.checkpoint import load_checkpoint, save_model
from core.io.frames import write_frames
from core.io.limits import MAX_ELEMENTS, MAX_INFLATION
from core.io.safe_yaml import MAX_EXPANDED, load_yaml_text
from core.models.basicvsr import BasicVSR
from core.models.spec import MAX_BLOCKS, MAX_WIDTH, dense_spec
from core.train.config_load import load_config
from tests.conftest import ROOT
from tests.helpers import tiny_model

PEAK_MB = 500


# Runs main.py in this interpreter and, at exit, writes the process's VmHWM (peak RSS, kB). Measured from the
# inside because a child forked or vforked from pytest inherits pytest's own peak in getrusage's ru_maxrss.
_PEAK_WRAPPER = """
import atexit, runpy, sys
report_to = sys.argv.pop(1)

def report():
    try:
        with open("/proc/self/status") as f:
            kb = next(line.split()[1] for line in f if line.startswith("VmHWM:"))
    except OSError:         # no /proc: no figure
        return
    with open(report_to, "w") as f:
        f.write(kb)

atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def run_entry(tmp_path: Path, *argv) -> tuple[int, str, float | None]:
    """``python main.py ARGV`` in a subprocess: exit code, stderr, its peak RSS in MB (None without /proc)."""
    peak_path = tmp_path / f"peak-{time.monotonic_ns()}.txt"
    proc = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(peak_path), str(ROOT / "main.py"),
                           *map(str, argv)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, text=True)
    peak = int(peak_path.read_text()) / 1024 if peak_path.exists() else None
    return proc.returncode, proc.stderr, peak


def assert_refused(rc: int, err: str, pattern: str, peak_mb: float | None = None) -> None:
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(pattern, err), err
    if peak_mb is not None:
        assert 100 < peak_mb < PEAK_MB, f"refusal peaked at {peak_mb:.0f} MB"


def cli_refusal(capsys, argv, pattern: str) -> str:
    """In-process ``main(argv)``: exit 2 and exactly one ``error:`` line matching ``pattern``."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert_refused(2, err, pattern)
    return err


def meta_shapes(variant: str, num_feat: int, num_block: int) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in BasicVSR(dense_spec(variant, num_feat, num_block)).state_dict().items()}


def stride0_state(variant: str, num_feat: int, num_block: int) -> dict[str, torch.Tensor]:
    """Every tensor of a dense network, each one float stored once and expanded (stride 0) to its shape."""
    return {k: torch.zeros(1).expand(s) for k, s in meta_shapes(variant, num_feat, num_block).items()}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"params": tiny_model("basicvsr-uni", 8, 1).state_dict()}, path)
    return path


# -- checkpoints: sizes bounded before allocation --------------------------------------------------------
def test_stride0_width_4096_is_refused_in_a_few_hundred_mb(tmp_path):
    path = tmp_path / "wide.pth"
    torch.save({"params": stride0_state("basicvsr-uni", 4096, 1)}, path)
    assert path.stat().st_size < 64_000          # torch.save keeps the one stored value per tensor
    rc, err, peak = run_entry(tmp_path, "info", path)
    assert_refused(rc, err, r"tensor '.*' claims [\d,]+ values .* holds 1 \(a stride-0 expansion", peak)


def test_stride0_width_100000_in_2kb_is_refused(tmp_path):
    path = tmp_path / "huge.pth"
    torch.save({"params": {"forward_trunk.main.0.weight": torch.zeros(1).expand(100000, 100003, 3, 3),
                           "forward_trunk.main.2.0.conv1.weight": torch.zeros(1).expand(100000, 100000, 3, 3)}}, path)
    assert path.stat().st_size < 4096
    rc, err, peak = run_entry(tmp_path, "info", path)
    assert_refused(rc, err, r"'forward_trunk.main.0.weight' claims 90,002,700,000 values", peak)


def test_model_file_spec_of_100000_channels_is_refused(tmp_path):
    save_model(tiny_model("basicvsr-uni", 8, 1), tmp_path / "m.pth")
    raw = torch.load(tmp_path / "m.pth", weights_only=True)
    spec = json.loads(raw["spec"])
    spec["num_feat"] = 100000
    raw["spec"] = json.dumps(spec)
    torch.save(raw, tmp_path / "wide.pth")
    rc, err, peak = run_entry(tmp_path, "info", tmp_path / "wide.pth")
    assert_refused(rc, err, rf"num_feat = 100000 is wider than the limit of {MAX_WIDTH} channels", peak)


def test_zip_bomb_is_refused_from_its_directory(tmp_path):
    """A deflated record of zeros: 80 MB from ~80 KB. torch.load inflates a record before any size check."""
    src, bomb = tmp_path / "src.pth", tmp_path / "bomb.pth"
    torch.save({"params": {"x": torch.zeros(4)}}, src)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info in zin.infolist():
            if info.filename.endswith("data/0"):
                with zout.open(info.filename, "w", force_zip64=True) as f:
                    for _ in range((MAX_INFLATION >> 20) + 16):
                        f.write(bytes(1 << 20))
            else:
                zout.writestr(info.filename, zin.read(info.filename))
    assert bomb.stat().st_size < 1 << 20
    rc, err, peak = run_entry(tmp_path, "info", bomb)
    assert_refused(rc, err, r"would unpack [\d,]+ bytes into [\d,]+ \(a compression bomb", peak)


@pytest.mark.parametrize("case, pattern", [
    ("wide_first_conv", rf"num_feat = 2048 is wider than the limit of {MAX_WIDTH}"),
    ("deep", rf"more than the limit of {MAX_BLOCKS} residual blocks"),
    ("too_many_values", rf"describes a network of [\d,]+ values, more than the limit of {MAX_ELEMENTS:,}"),
    ("too_many_tensors", r"holds 5,000 tensors"),
    ("wide_block", r"forward_blocks\[0\]\.mid = 5000 is wider than the limit"),
    ("stride0_matching_shape", r"'forward_trunk.main.0.weight' claims 792 values .* holds 1 "),
])
def test_bounds_are_checked_on_names_and_shapes_before_building(tmp_path, monkeypatch, case, pattern):
    state = tiny_model("basicvsr-uni", 8, 1).state_dict()
    if case == "wide_first_conv":        # real storage, small budget: only the width bound stops it
        state["forward_trunk.main.0.weight"] = torch.zeros(2048, 2051, 3, 3)
    elif case == "deep":
        state[f"forward_trunk.main.2.{10**6}.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    elif case == "too_many_values":      # every width within bounds, 1024 x 30 blocks is 0.57 G values
        save_model(tiny_model("basicvsr-uni", 8, 1), tmp_path / "m.pth")
        state = torch.load(tmp_path / "m.pth", weights_only=True)
        state["spec"] = json.dumps(dense_spec("basicvsr-uni", 1024, 30).to_json())
    elif case == "too_many_tensors":
        state.update({f"extra.{i}": torch.zeros(1) for i in range(5000 - len(state))})
    elif case == "wide_block":
        state["forward_trunk.main.2.0.conv1.weight"] = torch.zeros(5000, 8, 3, 3)
    elif case == "stride0_matching_shape":
        state["forward_trunk.main.0.weight"] = torch.zeros(1).expand(8, 11, 3, 3)
    built = []     # the network itself is never built (shapes come from a meta-device copy)
    monkeypatch.setattr("core.io.checkpoint.BasicVSR", lambda *a, **k: built.append(1) or pytest.fail("built"))
    torch.save(state if case == "too_many_values" else {"params": state}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_checkpoint(tmp_path / "x.pth")
    assert "\n" not in str(info.value) and not built


# -- non-finite weights ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_weights_are_refused_by_name_and_allowed_for_inspection(tmp_path, capsys, value):
    model = tiny_model("basicvsr-uni", 8, 1)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["forward_trunk.main.2.0.conv2.bias"][3] = value
    state["upconv1.weight"][0, 0, 0, 0] = value          # later in network order: not the one named
    torch.save({"params": state}, tmp_path / "bad.pth")
    write_frames(np.zeros((2, 8, 8, 3), np.uint8), tmp_path / "clip")
    for argv in (["info", tmp_path / "bad.pth"], ["plan", tmp_path / "bad.pth", "--ratio", "0.5"],
                 ["sr", tmp_path / "bad.pth", tmp_path / "clip", tmp_path / "out"]):
        cli_refusal(capsys, argv, r"tensor 'forward_trunk.main.2.0.conv2.bias' holds NaN or infinite values .*"
                                  r".*--allow-nonfinite")
    assert not (tmp_path / "out").exists()
    assert main(["info", str(tmp_path / "bad.pth"), "--allow-nonfinite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["channels"] == 8
    loaded = load_checkpoint(tmp_path / "bad.pth", allow_nonfinite=True)
    assert not torch.isfinite(loaded.model.forward_trunk.main[2][0].conv2.bias).all()


def test_nonfinite_model_file_is_refused(tmp_path):
    model = tiny_model("basicvsr-uni", 8, 1)
    with torch.no_grad():
        model.conv_hr.weight[1, 2, 0, 0] = float("-inf")
    save_model(model, tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match=r"tensor 'conv_hr.weight' holds NaN or infinite values"):
        load_checkpoint(tmp_path / "m.pth")
    assert load_checkpoint(tmp_path / "m.pth", allow_nonfinite=True).spec == model.spec


def test_nonfinite_refusal_costs_little_memory(tmp_path):
    state = tiny_model("basicvsr-uni", 8, 1).state_dict()
    state["conv_last.bias"] = torch.tensor([0.0, float("nan"), 0.0])
    torch.save(state, tmp_path / "nan.pth")
    rc, err, peak = run_entry(tmp_path, "info", tmp_path / "nan.pth")
    assert_refused(rc, err, r"tensor 'conv_last.bias' holds NaN", peak)


# -- YAML: alias bombs, binary files, parse errors -------------------------------------------------------
def alias_bomb(levels: int = 9, fan: int = 9) -> str:
    """Billion laughs under one key: ``fan ** levels`` strings from a few hundred bytes."""
    lines = ["sir:", "  lock: &l0 [" + ", ".join(['"lol"'] * fan) + "]"]
    lines += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_in_one_short_line(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    assert (tmp_path / "bomb.yaml").stat().st_size < 1000
    rc, err, peak = run_entry(tmp_path, "train", tmp_path / "bomb.yaml", "--run-dir", tmp_path / "run")
    assert_refused(rc, err, rf"aliases expand past {MAX_EXPANDED:,} values", peak)
    assert len(err) < 200 and not (tmp_path / "run").exists()


def test_yaml_bomb_in_an_override_is_refused(capsys, tmp_path):
    items = ["&l0 [" + ", ".join(["lol"] * 9) + "]"]
    items += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (tmp_path / "c.yaml").write_text("{}\n")
    err = cli_refusal(capsys, ["train", tmp_path / "c.yaml", "--set", f"sir.lock=[{', '.join(items)}]",
                               "--run-dir", tmp_path / "run"],
                      r"override sir.lock: refused, its aliases expand past")
    assert len(err) < 200


def test_small_yaml_with_aliases_still_loads():
    data = load_yaml_text("a: &x [1, 2]\nb: *x\nc: {<<: {k: 1}, j: 2}\n", "t.yaml")
    assert data == {"a": [1, 2], "b": [1, 2], "c": {"k": 1, "j": 2}}


@pytest.mark.parametrize("content, pattern", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 20, r"not a text file \(invalid UTF-8 at byte \d+\)"),
    (b"a: &a [*a]\n", r"an alias refers to a node that contains it"),
    (b"[" * 5000 + b"]" * 5000, r"nested too deeply"),
    (b"sir:\n  ratio: [1, 2\n  align: 3\n", r"not valid YAML \(line \d+, column \d+: .*\)"),
    (b"sir:\n\tratio: 0.5\n", r"not valid YAML \(line 2, column 1: .*\)"),
    (b"a: \x00\n", r"not valid YAML \(position 3: special characters are not allowed\)"),
    (b"sir:\n  ratio: " + b"1" * 5000 + b"\n", r"a value cannot be read"),
    (b"sir:\n  ratio: " + b"9" * 400 + b"\n", r"sir.ratio must be a finite number, got an integer of 400 digits"),
    (b"a: !!python/object:os.system {}\n", r"not valid YAML \(line 1, column 4: .*could not determine a constructor"),
    (b"data:\n  patch_size: .nan\n", r"data\.patch_size must be an integer, got nan"),       # was a traceback
    (b"data:\n  clip_length: -.inf\n", r"data\.clip_length must be an integer, got -inf"),
])
def test_bad_yaml_files_are_one_short_line(tmp_path, capsys, content, pattern):
    (tmp_path / "c.yaml").write_bytes(content)
    err = cli_refusal(capsys, ["train", tmp_path / "c.yaml", "--run-dir", tmp_path / "run"], pattern)
    assert len(err.replace(str(tmp_path), "")) < 200      # one short line besides the path the user gave


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.mkdir(), r"is a folder, not a config file"),
    (lambda p: None, r"cannot read the config \(no such file\)"),
    (lambda p: p.write_bytes(b"x" * ((1 << 20) + 1)), r"refused, 1,048,577 bytes is more than a config holds"),
])
def test_config_path_that_is_no_config(tmp_path, capsys, make, pattern):
    make(tmp_path / "c.yaml")
    cli_refusal(capsys, ["train", tmp_path / "c.yaml", "--run-dir", tmp_path / "run"], pattern)


def test_unreadable_config_and_checkpoint(tmp_path, monkeypatch):
    """Root ignores chmod 000, so the OS refusal is injected where the file is opened."""
    (tmp_path / "c.yaml").write_text("sir: {ratio: 0.5}\n")
    (tmp_path / "c.pth").write_bytes(b"\x80\x02")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:
        m.setattr(os, "open", denied)
        with pytest.raises(ConfigError, match=r"c.yaml: cannot read the config \(Permission denied\)$"):
            load_config(tmp_path / "c.yaml")
    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(CheckpointError, match=r"c.pth: cannot read \(Permission denied\)$"):
        load_checkpoint(tmp_path / "c.pth")


# -- the command line ------------------------------------------------------------------------------------
@pytest.fixture()
def clips(tmp_path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 255, (2, 32, 40, 3), dtype=np.uint8)
    write_frames(gt[:1, ::4, ::4], tmp_path / "one" / "lr" / "a")
    write_frames(gt[:1], tmp_path / "one" / "gt" / "a")
    write_frames(gt[:, ::4, ::4], tmp_path / "two" / "lr" / "a")
    write_frames(gt, tmp_path / "two" / "gt" / "a")
    write_frames(np.concatenate([gt, gt[:1]])[:, ::4, ::4], tmp_path / "three" / "lr" / "a")
    damaged = tmp_path / "damaged"
    write_frames(gt[:, ::4, ::4], damaged)
    first = sorted(damaged.iterdir())[0]
    first.write_bytes(first.read_bytes()[:30])
    return {"one": tmp_path / "one", "two": tmp_path / "two", "three": tmp_path / "three", "damaged": damaged}


@pytest.fixture()
def no_inference(monkeypatch):
    """Any convolution run fails the test: the refusal must come before inference."""
    monkeypatch.setattr(torch.nn.Conv2d, "forward", lambda self, x: pytest.fail("inference ran before the refusal"))


@pytest.mark.parametrize("argv, pattern", [
    (["sr", "{ckpt}", "{one}/lr/a", "{tmp}/out"], r"clip a has 1 frame; BasicVSR needs at least 2"),
    (["eval", "{ckpt}", "--lr", "{one}/lr", "--gt", "{one}/gt"], r"clip a has 1 frame; BasicVSR needs at least 2"),
    (["eval", "{ckpt}", "--lr", "{two}/lr", "--gt", "{two}/gt", "--crop", "-5"], r"--crop: must be at least 0"),
    (["eval", "{ckpt}", "--lr", "{two}/lr", "--gt", "{two}/gt", "--crop", "100"],
     r"--crop 100 leaves no pixels of clip a's 32x40 \(height x width\) frames \(the largest crop is 15\)"),
    (["eval", "{ckpt}", "--lr", "{two}/lr", "--gt", "{two}/lr"], r"LR frames are 8x10 but GT frames are 8x8"),
    (["eval", "{ckpt}", "--lr", "{three}/lr", "--gt", "{two}/gt"], r"clip a: 3 LR frames but 2 GT frames"),
    (["sr", "{ckpt}", "{damaged}", "{tmp}/out"], r"cannot read image .*: not a readable image file$"),
    (["sr", "{ckpt}", "{two}/lr/a", "{tmp}/out", "--max-frames", "-1"], r"--max-frames: must be at least 2"),
    (["sr", "{ckpt}", "{two}/lr/a", "{tmp}/out", "--max-frames", "1"], r"--max-frames: must be at least 2"),
    (["sr", "{ckpt}", "{two}/lr/a", "{tmp}/out", "--max-frames", "many"], r"expected a whole number, got 'many'"),
    (["info", "{ckpt}", "--size", "0x0"], r"--size: size must look like 180x320"),
    (["info", "{ckpt}", "--size", "99999x10"], r"--size: size must look like 180x320"),
    (["export", "{ckpt}", "--format", "pickle", "--out", "{tmp}/m.pkl"], r"--format: invalid choice: 'pickle'"),
    (["plan", "{ckpt}", "--ratio", "1.5"], r"1\.5.*\[0, 1\)"),
    (["info"], r"the following arguments are required: checkpoint"),
    (["frobnicate"], r"invalid choice: 'frobnicate'"),
    (["info", "{tmp}"], r"not a file"),
    (["info", "{tmp}/missing.pth"], r"no such file"),
    (["sr", "{ckpt}", "{tmp}/missing", "{tmp}/out"], r"clip not found"),
    (["sr", "{ckpt}", "{ckpt}", "{tmp}/out"], r"neither a folder of frames nor a video|not a (clip|video)"),
    (["eval", "{ckpt}", "--lr", "{ckpt}", "--gt", "{two}/gt"], r"is a file, not a folder of clips"),
    # the hostile pass after issue 20: each used to run (or fail after inference, or print a 300-digit number)
    (["eval", "{ckpt}", "--lr", "{two}/lr", "--gt", "{two}/gt", "--crop", "11"],
     r"clip a: SSIM needs more than 10x10 pixels, and its 32x40 \(height x width\) GT frames leave 10x18"),
    (["plan", "{ckpt}", "--target-ms", "1e-300"], r"--target-ms: expected a positive number from 1e-09 to 1e\+09"),
    (["plan", "{ckpt}", "--target-fps", "inf"], r"--target-fps: expected a positive number from 1e-09 to"),
    (["prune", "{ckpt}", "--ratio", "0.5", "--align", "1" + "0" * 30, "--no-reconstruct", "--out", "{tmp}/p.pth"],
     r"--align: expected a whole number from 1 to 1024"),
    (["plan", "{ckpt}", "--ratio", "0.5", "--min-keep", "1000000"],
     r"--min-keep: expected a whole number from 1 to 1024"),
    (["export", "{ckpt}", "--format", "onnx", "--calib", "{two}/lr/a", "--out", "{tmp}/m.onnx"],
     r"--calib and --calib-gt calibrate an int8 export; with --precision fp32 they would be read for nothing"),
    (["export", "{ckpt}", "--format", "onnx", "--out", "{tmp}/m.h5"],
     r"m\.h5 is named like an HDF5 report, but --format onnx writes an ONNX model: name it \*\.onnx"),
    (["export", "{ckpt}", "--format", "h5", "--out", "{tmp}/r.pth"],
     r"r\.pth is named like a PyTorch checkpoint, but --format h5 writes an HDF5 report: name it \*\.h5"),
])
def test_bad_command_lines_are_one_line_before_inference(tmp_path, capsys, ckpt, clips, no_inference, argv, pattern):
    values = {"ckpt": ckpt, "tmp": tmp_path, **clips}
    cli_refusal(capsys, [a.format(**values) for a in argv], pattern)


@pytest.mark.parametrize("make, pattern", [
    (lambda p: p.write_bytes(b""), r"empty file, not a PyTorch checkpoint"),
    (lambda p: p.write_bytes(b"version: 1\n"), r"neither a zip archive nor pickle data"),
    ("truncated", r"damaged checkpoint \(a zip archive whose end is missing"),
    ("zip", r"a zip archive but not a PyTorch checkpoint \(no data.pkl record\)"),
    ("zip-without-version", r"a zip archive but not a PyTorch checkpoint \(no version record\)"),
    ("link-loop", r"x\.pth: a loop of symbolic links$"),
])
def test_files_that_are_no_checkpoint(tmp_path, capsys, ckpt, make, pattern):
    path = tmp_path / "x.pth"
    if make == "truncated":
        path.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif make == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("notes.txt", "hello")
    elif make == "zip-without-version":          # torch's own message for it was a paragraph asking for reports
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", b"not a pickle")
    elif make == "link-loop":
        path.symlink_to(tmp_path / "y.pth")
        (tmp_path / "y.pth").symlink_to(path)
    else:
        make(path)
    cli_refusal(capsys, ["info", path], pattern)


def test_user_error_messages_are_one_bounded_line():
    assert str(UserError("a\nb\r\n  c")) == "a b c"
    long = str(UserError("x" * 10_000))
    assert len(long) == 400 and long.endswith("...")
    assert one_line("line one\nline two", 8) == "line ..."


def _start_and_interrupt(marker: str) -> subprocess.CompletedProcess | None:
    """Start ``main.py info``, send SIGINT once ``marker`` shows in its memory map (mid-import), wait.
    None when start-up finished without ever loading ``marker``."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "info", "nothing.pth"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    maps = Path(f"/proc/{proc.pid}/maps")
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if marker in maps.read_text():
                break
        except OSError:
            pass
        time.sleep(0.002)
    else:
        proc.communicate(timeout=60)
        return None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see how far start-up got")
@pytest.mark.parametrize("marker", ["libtorch_cpu", "_multiarray_umath"])     # torch's C++ init; numpy within it
def test_ctrl_c_during_start_up_is_one_line_and_exit_130(marker):
    result = _start_and_interrupt(marker)
    if result is None:
        pytest.skip(f"start-up no longer loads {marker}")
    assert (result.returncode, result.stderr) == (130, "interrupted\n"), result.stderr[-2000:]

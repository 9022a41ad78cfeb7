"""Every path a user names, as every command takes it (issue 29): a loop of symbolic links says it is one (it said
"does not exist", and the user looked for a file that is there), a link to nothing says where it points, a folder
where a file goes and a file where a folder goes say so, a FIFO or /dev/zero as a plan or config is refused at once,
and an --out that is an input is refused. Each: one ``error:`` line, exit 2, every file as it was."""
from __future__ import annotations

import os

import numpy as np
import pytest

from core.io.frames import read_clip, write_frames
from tests.test_no_data_loss import ckpt, clip  # noqa: F401  (fixtures)
from tests.trust_support import checksums, refused, refused_measured

LOOP = r"a loop of symbolic links"

# {ckpt} a model file, {clip} an LR clip folder, {x} the path under test, {tmp} the test's folder
LOOPED = [
    ("model", ["info", "{x}"]),
    ("model", ["sr", "{x}", "{clip}", "{tmp}/out"]),
    ("clip", ["sr", "{ckpt}", "{x}", "{tmp}/out"]),
    ("folder", ["sr", "{ckpt}", "{clip}", "{tmp}/out", "--scratch", "{x}"]),
    ("model", ["eval", "{x}", "--lr", "{clip}", "--gt", "{gt}"]),
    ("clip", ["eval", "{ckpt}", "--lr", "{x}", "--gt", "{clip}"]),
    ("clip", ["eval", "{ckpt}", "--lr", "{clip}", "--gt", "{x}"]),
    ("clip", ["eval", "--sr", "{x}", "--gt", "{clip}"]),
    ("clip", ["eval", "--sr", "{clip}", "--gt", "{x}"]),
    ("model", ["plan", "{x}", "--ratio", "0.5"]),
    ("clip", ["plan", "{ckpt}", "--ratio", "0.5", "--criterion", "contribution", "--calib", "{x}"]),
    ("model", ["prune", "{x}", "--ratio", "0.5", "--out", "{tmp}/p.pth"]),
    ("clip", ["prune", "{ckpt}", "--ratio", "0.5", "--out", "{tmp}/p.pth", "--calib", "{x}"]),
    ("model", ["export", "{x}", "--format", "h5", "--out", "{tmp}/r.h5"]),
    ("clip", ["export", "{ckpt}", "--format", "onnx", "--precision", "int8", "--calib", "{x}", "--out",
              "{tmp}/m.onnx"]),
    ("clip", ["export", "{ckpt}", "--format", "onnx", "--precision", "int8", "--calib", "{clip}", "--calib-gt",
              "{x}", "--out", "{tmp}/m.onnx"]),
    ("model", ["compress", "{x}", "--footage", "{clip}", "--speedup", "2", "--out", "{tmp}/c.onnx"]),
    ("clip", ["compress", "{ckpt}", "--footage", "{x}", "--speedup", "2", "--out", "{tmp}/c.onnx"]),
    ("config", ["train", "{x}", "--run-dir", "{tmp}/run"]),
    ("plan", ["train", "{config}", "--run-dir", "{tmp}/run", "--plan", "{x}"]),
    ("folder", ["train", "--resume", "{x}"]),
    ("model", ["study", "sensitivity", "{x}", "--lr", "{clip}"]),
    ("clip", ["study", "sensitivity", "{ckpt}", "--lr", "{x}"]),
    ("clip", ["study", "sweep", "{ckpt}", "--lr", "{clip}", "--gt", "{x}"]),
]


def _argv(argv: list[str], **values: object) -> list[str]:
    return [a.format(**values) for a in argv]


@pytest.mark.parametrize("kind, argv", LOOPED, ids=[f"{a[0]}-{k}-{i}" for i, (k, a) in enumerate(LOOPED)])
def test_a_link_loop_is_called_a_link_loop(tmp_path, capsys, ckpt, clip, kind, argv):  # noqa: F811
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    config = tmp_path / "c.yaml"
    config.write_text("stages: [finetune]\n")
    gt = tmp_path / "gt"
    write_frames(np.repeat(np.repeat(read_clip(clip).frames, 4, axis=1), 4, axis=2), gt)
    before = checksums(tmp_path)
    refused(capsys, _argv(argv, ckpt=ckpt, clip=clip, gt=gt, x=loop, tmp=tmp_path, config=config),
            rf"loop\b.*{LOOP}")
    assert checksums(tmp_path) == before


def test_a_link_to_nothing_says_where_it_points(tmp_path, capsys, ckpt):  # noqa: F811
    (tmp_path / "gone").symlink_to(tmp_path / "moved-away")
    refused(capsys, ["plan", ckpt, "--ratio", "0.5", "--criterion", "contribution", "--calib", tmp_path / "gone"],
            r"gone \(a symbolic link to nothing: it points to \S*moved-away\)")
    refused(capsys, ["eval", ckpt, "--lr", tmp_path / "gone", "--gt", tmp_path / "gone"],
            r"a symbolic link to nothing")


def test_a_link_loop_refusal_is_small(tmp_path, ckpt, clip):  # noqa: F811
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    refused_measured(["eval", ckpt, "--lr", clip, "--gt", tmp_path / "loop"], LOOP)


def test_a_path_through_a_loop_says_so(tmp_path, capsys, ckpt):  # noqa: F811
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    refused(capsys, ["info", tmp_path / "loop" / "x.pth"], rf"x\.pth: a path through {LOOP}")


# -- 5. what a careless or hostile user gives ------------------------------------------------------------------
@pytest.mark.parametrize("argv, pattern", [
    (["info", "{clip}"], r"clip: not a file"),
    (["sr", "{clip}", "{clip}", "{tmp}/out"], r"clip: not a file"),
    (["sr", "{ckpt}", "{ckpt}", "{tmp}/out"], r"dense\.pth is neither a folder of frames nor a video"),
    (["train", "{clip}", "--run-dir", "{tmp}/run"], r"clip: is a folder, not a config file"),
    (["train", "{ckpt}", "--run-dir", "{tmp}/run"], r"dense\.pth"),
    (["train", "--resume", "{ckpt}"], r"cannot resume: \S*dense\.pth: not a folder$"),
    (["train", "--resume", "{tmp}/nothing"], r"cannot resume: \S*nothing: no such folder$"),
    (["sr", "{ckpt}", "{clip}", "{tmp}/out", "--scratch", "{ckpt}"], r"--scratch \S*dense\.pth is not a folder"),
    (["sr", "{ckpt}", "{clip}", "{tmp}/out", "--scratch", "{clip}"], r"--scratch \S* is inside the input"),
    (["eval", "{ckpt}", "--lr", "{clip}", "--gt", "{clip}", "--scratch", "{clip}"], r"--scratch \S* is inside the input"),
])
def test_a_folder_where_a_file_goes_and_a_file_where_a_folder_goes(tmp_path, capsys, ckpt, clip, argv,  # noqa: F811
                                                                   pattern):
    before = checksums(tmp_path)
    refused(capsys, _argv(argv, ckpt=ckpt, clip=clip, tmp=tmp_path), pattern)
    assert checksums(tmp_path) == before


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
@pytest.mark.parametrize("argv", [
    ["train", "{x}", "--run-dir", "{tmp}/run"],
    ["train", "{config}", "--run-dir", "{tmp}/run", "--plan", "{x}"],
    ["info", "{x}"],
    ["sr", "{x}", "{clip}", "{tmp}/out"],
    ["sr", "{ckpt}", "{x}", "{tmp}/out"],
    ["eval", "{ckpt}", "--lr", "{clip}", "--gt", "{x}"],       # a traceback (NotADirectoryError)
    ["eval", "--sr", "{x}", "--gt", "{clip}"],
])
def test_a_fifo_or_dev_zero_as_a_plan_config_or_model_is_refused_at_once(tmp_path, ckpt, clip, special,  # noqa: F811
                                                                         argv):
    """Never blocks on the FIFO (the measured run fails by timeout), never reads /dev/zero to the end."""
    if special == "fifo":
        x = tmp_path / "pipe"
        os.mkfifo(x)
    else:
        x = tmp_path / "zero.yaml"
        x.symlink_to("/dev/zero")
    config = tmp_path / "c.yaml"
    config.write_text("stages: [finetune]\n")
    refused_measured(_argv(argv, x=x, ckpt=ckpt, clip=clip, tmp=tmp_path, config=config),
                     r"FIFO|character device|not a regular file|not a file|neither a folder of frames nor a video",
                     timeout=60)


@pytest.mark.parametrize("argv", [
    ["prune", "{ckpt}", "--ratio", "0.5", "--out", "{ckpt}", "--overwrite"],
    ["export", "{ckpt}", "--format", "h5", "--out", "{ckpt}", "--overwrite"],
    ["sr", "{ckpt}", "{clip}", "{clip}", "--overwrite"],
    ["sr", "{ckpt}", "{clip}", "{clip}/0000.png", "--overwrite"],
    ["compress", "{ckpt}", "--footage", "{clip}", "--speedup", "2", "--out", "{tmp}/c.onnx", "--pth", "{ckpt}",
     "--overwrite"],
    ["study", "sensitivity", "{ckpt}", "--lr", "{clip}", "--out", "{ckpt}", "--overwrite"],
    # prune wrote its model over a frame of its --calib clip, exit 0
    ["prune", "{ckpt}", "--ratio", "0.5", "--criterion", "contribution", "--calib", "{clip}", "--out",
     "{clip}/0000.png", "--overwrite"],
    ["prune", "{ckpt}", "--ratio", "0.5", "--calib", "{clip}", "--out", "{clip}/p.pth"],
])
def test_an_output_that_is_an_input_is_refused(tmp_path, capsys, ckpt, clip, argv):  # noqa: F811
    before = checksums(tmp_path)
    refused(capsys, _argv(argv, ckpt=ckpt, clip=clip, tmp=tmp_path), r"input")
    assert checksums(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_unreadable_files_are_one_line(tmp_path, capsys, ckpt, clip):  # noqa: F811
    ckpt.chmod(0)
    try:
        refused(capsys, ["info", ckpt], r"dense\.pth: .*[Pp]ermission denied")
    finally:
        ckpt.chmod(0o644)

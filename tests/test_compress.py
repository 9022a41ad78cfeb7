"""``compress``: the command end to end on a tiny network, the held-out split, and its refusals before any work."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

import core.compress.run as compress_run
from core.cli import main
from core.compress.footage import read_footage
from core.compress.speed import SpeedMeasure
from core.io.checkpoint import load_checkpoint, save_model
from core.io.frames import write_frames
from tests.helpers import tiny_model
from tests.latency_support import keyed_synthetic_table


def moving_frames(count: int, height: int = 40, width: int = 48, seed: int = 0) -> np.ndarray:
    """uint8 frames of a smooth random scene panned a pixel per frame (video-like, so SpyNet's flow is sane)."""
    rng = np.random.default_rng(seed)
    import cv2

    scene = cv2.resize(rng.integers(0, 256, (height // 4 + 4, width // 4 + count + 4, 3), dtype=np.uint8),
                       (width + 4 * count, height), interpolation=cv2.INTER_CUBIC)
    return np.stack([scene[:, i:i + width] for i in range(count)])


@pytest.fixture(scope="module")
def dense_file(tmp_path_factory):
    return save_model(tiny_model("basicvsr", 16, 2), tmp_path_factory.mktemp("dense") / "dense.pth")


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    folder = tmp_path_factory.mktemp("footage") / "clip"
    write_frames(moving_frames(10), folder)
    return folder


@pytest.fixture
def synthetic_machine(monkeypatch):
    """The latency table from a formula and an int8 gain of 1 (no timing of layers), so planning is quick."""
    import core.profile.latency as latency

    monkeypatch.setattr(latency, "latency_table", lambda device, size, nf, bi, **_: keyed_synthetic_table(
        latency.torch.device(device), size, nf, bi))
    monkeypatch.setattr(compress_run, "int8_conv_gain", lambda size: 1.0)


def outputs_of(out):
    stem = out.with_suffix("")
    return [out, stem.with_name(stem.name + ".report.json"), stem.with_name(stem.name + ".report.png")]


def test_compress_end_to_end_writes_the_file_its_report_and_picture(dense_file, footage, tmp_path, capsys,
                                                                    synthetic_machine):
    out = tmp_path / "fast.onnx"
    code = main(["compress", str(dense_file), "--footage", str(footage), "--target-ms", "1e6", "--size", "40x48",
                 "--out", str(out), "--pth", str(tmp_path / "fast.pth"), "--calib-frames", "6", "--judge-frames",
                 "4", "--threads", "2"])
    assert code == 0
    printed = capsys.readouterr()
    assert f"wrote {out}" in printed.out and "held out: later frames" in printed.out
    assert "compress: footage" in printed.err
    onnx_file, report_file, picture = outputs_of(out)
    assert all(p.is_file() for p in (onnx_file, report_file, picture)) and (tmp_path / "fast.pth").is_file()
    report = json.loads(report_file.read_text())
    assert report["footage"]["calibration_frames"] == [0, 6]
    assert report["footage"]["judged"][0]["frames"] == [6, 10]
    chosen = report["chosen"]
    assert chosen["recipe"] == "no cut, int8, full flow"        # a target every rung reaches: the mildest
    assert chosen["guard"]["verified"] and chosen["measured"]["speedup"] > 0
    assert {"psnr_vs_dense_db", "bicubic_psnr_vs_dense_db"} <= set(chosen["heldout"][0])
    assert report["machine"]["cpu_flags"] is not None and report["cpu_seconds"] > 0
    from core.deploy.runtime import read_onnx

    _, meta = read_onnx(onnx_file)
    assert meta["ssl_vsr.precision"] == "int8"


def test_a_cut_is_reconstructed_and_distilled_on_the_calibration_frames_only(dense_file, tmp_path, monkeypatch,
                                                                             synthetic_machine):
    """Every stage that learns from frames gets exactly the first N frames; the judged ones are the rest."""
    frames = moving_frames(12, seed=1)
    folder = tmp_path / "clip"
    write_frames(frames, folder)
    seen: dict[str, list[np.ndarray]] = {"scores": [], "reconstruct": [], "distill": [], "int8": []}

    def spy(name, fn, index):
        def wrapped(*args, **kwargs):
            seen[name].append(np.array(args[index] if index < len(args) else kwargs["calib"]))
            return fn(*args, **kwargs)
        return wrapped

    import core.deploy.onnx_export as onnx_export
    import core.train.frames_distill as frames_distill

    monkeypatch.setattr(compress_run, "scores_on", spy("scores", compress_run.scores_on, 2))
    monkeypatch.setattr(compress_run, "reconstruct", spy("reconstruct", compress_run.reconstruct, 3))
    monkeypatch.setattr(frames_distill, "distill", spy("distill", frames_distill.distill, 2))
    export = onnx_export.export_onnx

    def export_spy(model, path, **kwargs):
        seen["int8"].append(np.array(kwargs["calib"]))
        return export(model, path, **kwargs)

    monkeypatch.setattr(onnx_export, "export_onnx", export_spy)
    # The tiny network's real speed-ups are noise: this test is about the frames, so the file "runs" as planned.
    monkeypatch.setattr(compress_run, "realized_speed",
                        lambda dense, model, size: SpeedMeasure(tuple(size), (100.0,), (10.0,)))
    monkeypatch.setattr(compress_run, "distill_seconds", lambda req, spent, finish: 4.0)   # a few iterations
    result = compress_run.compress(compress_run.CompressRequest(
        str(dense_file), (str(folder),), str(tmp_path / "cut.onnx"), speedup=1.5, size=(40, 48),
        pth=str(tmp_path / "cut.pth"), calib_frames=7, judge_frames=5))
    assert result.chosen.plan.plan is not None                   # the synthetic machine needs a cut for 1.5x
    assert result.chosen.recovery and "distillation" in result.chosen.recovery
    for name, calls in seen.items():
        assert calls, f"{name} never ran"
        for got in calls:
            assert np.array_equal(got, frames[:7]), f"{name} read frames beyond the calibration frames"
    assert [q.frames for q in result.chosen.quality] == [(7, 12)]
    assert load_checkpoint(tmp_path / "cut.pth").meta["training"] == compress_run.DISTILLED


@pytest.mark.parametrize("make, words", [
    (lambda d: write_frames(moving_frames(4), d / "clip"), "too short"),
    (lambda d: write_frames(moving_frames(14, 24, 24), d / "clip"), "too small"),
    (lambda d: (d / "clip").write_text("not a video"), "neither a folder of frames nor a video"),
])
def test_bad_footage_is_refused_in_one_line_before_any_work(dense_file, tmp_path, capsys, make, words):
    make(tmp_path)
    out = tmp_path / "out.onnx"
    started = time.perf_counter()
    code = main(["compress", str(dense_file), "--footage", str(tmp_path / "clip"), "--speedup", "2",
                 "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and words in err and "\n" not in err
    assert time.perf_counter() - started < 10                     # refused before any measuring or cutting
    assert not any(p.exists() for p in outputs_of(out))


def test_an_unreachable_speedup_is_refused_with_the_best_reachable(dense_file, footage, tmp_path, capsys,
                                                                   synthetic_machine):
    code = main(["compress", str(dense_file), "--footage", str(footage), "--speedup", "1000", "--size", "40x48",
                 "--out", str(tmp_path / "out.onnx"), "--calib-frames", "6", "--judge-frames", "4"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "fastest reachable" in err and "x the dense network" in err
    assert not (tmp_path / "out.onnx").exists()


def test_outputs_are_claimed_first(dense_file, footage, tmp_path, capsys):
    existing = tmp_path / "out.report.json"
    existing.write_text("mine")
    code = main(["compress", str(dense_file), "--footage", str(footage), "--speedup", "2",
                 "--out", str(tmp_path / "out.onnx")])
    assert code == 2 and "already exists" in capsys.readouterr().err
    assert existing.read_text() == "mine"
    code = main(["compress", str(dense_file), "--footage", str(footage), "--speedup", "2",
                 "--out", str(footage)])
    assert code == 2


def test_footage_split_never_overlaps(footage, tmp_path):
    other = tmp_path / "other"
    write_frames(moving_frames(5, seed=3), other)
    split = read_footage([footage, other], calib_frames=6, judged_frames=3)
    assert len(split.calibration) == 6
    assert [(j.kind, j.first, len(j.frames)) for j in split.judged] == [("later frames", 6, 3), ("other clip", 0, 3)]

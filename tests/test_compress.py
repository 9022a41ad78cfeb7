"""``compress``: the command end to end on a tiny network, the held-out split, and its refusals before any work."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

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

pytestmark = pytest.mark.usefixtures("memo_traces")     # one ONNX trace per distinct network (tests/trace_memo.py)


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


def _synthetic(monkeypatch) -> None:
    import core.profile.latency as latency

    monkeypatch.setattr(latency, "latency_table", lambda device, size, nf, bi, **_: keyed_synthetic_table(
        latency.torch.device(device), size, nf, bi))
    monkeypatch.setattr(compress_run, "int8_conv_gain", lambda size: 1.0)
    monkeypatch.setattr(compress_run, "remembered_gain", lambda key: None)
    monkeypatch.setattr(compress_run, "remember_gain", lambda key, gain: None)
    monkeypatch.setattr(compress_run, "flow_saving_ms", lambda model, size: 0.0)


def _untimed(monkeypatch) -> list[np.ndarray]:
    import core.deploy.timing_probe as timing_probe

    given: list[np.ndarray] = []
    monkeypatch.setattr(timing_probe, "int8_timing_probe", lambda model, frames, flow: given.append(frames) or model)
    return given


@pytest.fixture
def synthetic_machine(monkeypatch):
    """The latency table from a formula, an int8 gain of 1 (none remembered) and no half-flow saving, so planning
    is quick and the same on every machine."""
    _synthetic(monkeypatch)


@pytest.fixture
def untimed_probe(monkeypatch):
    """Where a test fakes the measured speeds, the probe is never timed: it can be the model itself. Returns the
    frames each probe was given."""
    return _untimed(monkeypatch)


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
    steps = report["steps"]           # where the CPU went, step by step, never more than the whole call
    assert {"measure machine", "score units", "probe", "quantize", "time files", "judge", "write"} <= set(steps)
    assert 0 < sum(v["cpu_seconds"] for v in steps.values()) <= report["cpu_seconds"] + 0.5
    assert report["distillation"] == "no distillation: the dense network was not cut"
    assert "CPU-minutes (" in printed.out and "no distillation: the dense network was not cut" in printed.out
    from core.deploy.runtime import read_onnx

    _, meta = read_onnx(onnx_file)
    assert meta["ssl_vsr.precision"] == "int8"
    assert json.loads(meta["ssl_vsr.heldout"]) == chosen["heldout"]        # the file carries its judgement
    assert main(["sr", str(onnx_file), str(footage), str(tmp_path / "sr"), "--max-frames", "3"]) == 0
    assert "compress judged it on frames it never read: later frames" in capsys.readouterr().err       # and sr says it


@pytest.mark.parametrize("record", [None, 3, "x", {}, {"name": "a", "kind": "b", "frames": [0], "psnr_vs_dense_db": 1,
                                                      "bicubic_psnr_vs_dense_db": 2},
                                    {"name": "a", "kind": "b", "frames": [0, 2], "psnr_vs_dense_db": "nan",
                                     "bicubic_psnr_vs_dense_db": 2}])
def test_a_judgement_read_back_from_a_file_is_checked_not_trusted(record):
    from core.compress.judge import ClipQuality

    assert ClipQuality.from_json(record) is None
    good = ClipQuality("clip", "later frames", (10, 20), 31.5, 28.25)
    assert ClipQuality.from_json(good.to_json()) == good


@pytest.fixture(scope="module")
def built_cut(dense_file, tmp_path_factory):
    """One ``compress`` that builds a cut (1.5x on the synthetic machine), shared by the two tests after it, each
    asserting its own part of the run. The measured speeds are faked (the tiny network's real speed-ups are noise):
    the first plan's probe misses (1.11x), the second's and the files reach (10x), so the search re-plans and times
    again before it reconstructs anything; the cut is then distilled for a few seconds. Spies record the frames
    every stage that learns from frames was given (scores, reconstruction, distillation, int8 calibration, the
    probes) and the plan each reconstruction was for."""
    import core.deploy.onnx_export as onnx_export
    import core.train.frames_distill as frames_distill

    tmp = tmp_path_factory.mktemp("built")
    frames = moving_frames(12, seed=1)
    folder = tmp / "clip"
    write_frames(frames, folder)
    seen: dict[str, list[np.ndarray]] = {"scores": [], "reconstruct": [], "distill": [], "int8": []}
    built = []

    def spy(name, fn, index, also=None):
        def wrapped(*args, **kwargs):
            seen[name].append(np.array(args[index] if index < len(args) else kwargs["calib"]))
            if also is not None:
                also(args)
            return fn(*args, **kwargs)
        return wrapped

    export = onnx_export.export_onnx

    def export_spy(model, path, **kwargs):
        seen["int8"].append(np.array(kwargs["calib"]))
        return export(model, path, **kwargs)

    # probe 1 misses, probe 2, the file built from it and the distilled file reach
    timings = iter([(100.0, 90.0), (100.0, 10.0), (100.0, 10.0), (100.0, 10.0)])
    with pytest.MonkeyPatch.context() as mp:
        _synthetic(mp)
        probes = _untimed(mp)
        mp.setattr(compress_run, "scores_on", spy("scores", compress_run.scores_on, 2))
        mp.setattr(compress_run, "reconstruct", spy("reconstruct", compress_run.reconstruct, 3,
                                                    lambda args: built.append(args[2])))
        mp.setattr(frames_distill, "distill", spy("distill", frames_distill.distill, 2))
        mp.setattr(onnx_export, "export_onnx", export_spy)
        mp.setattr(compress_run, "realized_speed",
                   lambda dense, model, size: SpeedMeasure(tuple(size), *map(lambda v: (v,), next(timings))))
        mp.setattr(compress_run, "distill_seconds", lambda req, spent, finish: 4.0)   # a few iterations
        mp.setattr(compress_run, "MIN_DISTILL_SECONDS", 1.0)
        result = compress_run.compress(compress_run.CompressRequest(
            str(dense_file), (str(folder),), str(tmp / "cut.onnx"), speedup=1.5, size=(40, 48),
            pth=str(tmp / "cut.pth"), calib_frames=7, judge_frames=5))
    return SimpleNamespace(result=result, frames=frames, seen=seen, built=built, probes=probes, pth=tmp / "cut.pth")


def test_a_cut_is_reconstructed_and_distilled_on_the_calibration_frames_only(built_cut):
    """Every stage that learns from frames gets exactly the first N frames; the judged ones are the rest."""
    result, frames = built_cut.result, built_cut.frames
    assert result.chosen.plan.plan is not None                   # the synthetic machine needs a cut for 1.5x
    assert result.chosen.recovery and "distillation" in result.chosen.recovery
    for name, calls in built_cut.seen.items():
        assert calls, f"{name} never ran"
        for got in calls:
            assert np.array_equal(got, frames[:7]), f"{name} read frames beyond the calibration frames"
    assert [q.frames for q in result.chosen.quality] == [(7, 12)]
    assert built_cut.probes and all(np.array_equal(got, frames[:7]) for got in built_cut.probes)
    assert load_checkpoint(built_cut.pth).meta["training"] == compress_run.DISTILLED


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


def test_the_measured_int8_gain_is_remembered_for_the_next_plan(tmp_path, monkeypatch):
    from core.compress.speed import _gain_path, remember_gain, remembered_gain

    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path))
    assert remembered_gain("this machine") is None
    remember_gain("this machine", 4.2)
    assert remembered_gain("this machine") == 4.2 and remembered_gain("another machine") is None
    _gain_path("this machine").write_text("{not json")
    assert remembered_gain("this machine") is None                 # a damaged cache is measured again


@pytest.mark.slow
def test_the_guard_predicts_the_drop_against_gt_on_frames_it_never_saw(calendar_dir, tmp_path):
    """The official network in int8 on Vid4 calendar: calibrated on its first 8 LR frames with no GT, the guard's
    predicted drop is within 0.2 dB of the drop measured against GT on frames 10-19 (float minus int8)."""
    pytest.importorskip("onnxruntime")
    from core.compress.judge import sr_frames
    from core.deploy.onnx_export import export_onnx
    from core.deploy.runtime import load_stepper
    from core.io.frames import read_clip
    from core.metrics import y_psnr_frames
    from tests.helpers import official

    dense = load_checkpoint(official()).model.eval()
    lr = read_clip(calendar_dir / "BIx4", max_frames=20).frames
    gt = read_clip(calendar_dir / "GT", max_frames=20).frames[10:]
    check = export_onnx(dense, tmp_path / "dense.int8.onnx", precision="int8", calib=lr[:8], max_drop=5.0)
    measured = y_psnr_frames(sr_frames(dense, lr[10:]), gt) - y_psnr_frames(
        sr_frames(load_stepper(tmp_path / "dense.int8.onnx"), lr[10:]), gt)
    assert check.ok and not check.kept_float
    assert abs(check.charged_drop - measured) <= 0.2, (check.charged_drop, measured)


def test_the_ladder_takes_the_mildest_recipe_predicted_to_reach_and_names_the_fastest_otherwise():
    from core.errors import PlanError
    from core.compress.speed_plan import (CUT_STREAM, KEEP_STREAM, LADDER, NO_CUT, Machine, next_rung,
                                          plan_for_speed)
    from core.ssl import compute_scores
    from tests.latency_support import synthetic_table

    model = tiny_model("basicvsr", 16, 2)
    scores = compute_scores(model, "l1")
    table = synthetic_table((40, 48), 16, True)
    machine = Machine(table, scale=2.0, flow_saving_ms=4.0, dense_ms=2.0 * table.predict_ms(model.spec))
    dense = machine.fp32_ms(LADDER[0], model.spec)
    assert dense == pytest.approx(2.0 * machine.table.predict_ms(model.spec))      # table ms scaled to measured
    assert plan_for_speed(scores, machine, dense / 2.9, gain=3.0).rung == LADDER[0]   # int8 alone reaches 2.9x
    half = plan_for_speed(scores, machine, (dense - 4.0) / 3.0, gain=3.0)
    assert (half.rung.cut, half.rung.flow, half.plan) == (NO_CUT, "half", None)
    cut = plan_for_speed(scores, machine, dense / 4.0, gain=3.0)
    assert cut.rung.cut in (KEEP_STREAM, CUT_STREAM) and cut.plan is not None and cut.predicted_ms <= dense / 4.0
    after = plan_for_speed(scores, machine, dense / 4.0, gain=3.0, after=next_rung(cut.rung))
    assert LADDER.index(after.rung) > LADDER.index(cut.rung)                      # a refused rung gives way
    assert next_rung(LADDER[-1]) is None
    with pytest.raises(PlanError, match=r"fastest reachable is about \d+ ms per frame, [\d.]+x the dense"):
        plan_for_speed(scores, machine, dense / 1000, gain=3.0)


def test_a_miss_re_plans_with_the_gain_it_had_as_a_ratio_to_the_dense_network():
    """A plan predicted at 100 ms fp32 that ran 4x a dense network planned at 800 ms had an int8 gain of 2,
    whatever the milliseconds of that round (the machine's pace drifts; the ratio measured beside dense holds)."""
    from core.compress.speed_plan import LADDER, SpeedPlan, corrected_gain

    plan = SpeedPlan(LADDER[0], None, predicted_fp32_ms=100.0, gain=3.0)
    assert corrected_gain(plan, 4.0, dense_ms=800.0) == pytest.approx(0.5)
    assert corrected_gain(plan, 16.0, dense_ms=800.0) == pytest.approx(2.0)
    assert corrected_gain(plan, float("nan"), dense_ms=800.0) == 3.0


def test_plans_are_timed_before_they_are_built_and_a_miss_costs_no_reconstruction(built_cut):
    """The first plan's probe misses: the search re-plans and times again before reconstructing anything; the
    file built is the one whose probe reached, and the report lists both probes."""
    result, built = built_cut.result, built_cut.built
    report = result.report["timed_before_building"]
    assert len(report) == 2 and [p["measured"]["speedup"] for p in report] == [pytest.approx(100 / 90, abs=1e-3), 10.0]
    assert len(built) == 1 and built[0].to_json() == result.chosen.plan.plan.to_json()
    assert result.report["timed_before_building"][1]["int8_gain_assumed"] != report[0]["int8_gain_assumed"]


def test_when_no_timed_plan_reaches_nothing_is_built_and_the_fastest_timed_is_named(dense_file, footage, tmp_path,
                                                                                    monkeypatch, capsys,
                                                                                    synthetic_machine, untimed_probe):
    monkeypatch.setattr(compress_run, "realized_speed",
                        lambda dense, model, size: SpeedMeasure(tuple(size), (100.0,), (95.0,)))
    monkeypatch.setattr(compress_run, "reconstruct", lambda *a, **k: pytest.fail("reconstructed a missed plan"))
    monkeypatch.setattr(compress_run, "dense_ms", lambda dense, size: 1e9)     # far slower than its table: busy
    code = main(["compress", str(dense_file), "--footage", str(footage), "--speedup", "1.5", "--size", "40x48",
                 "--out", str(tmp_path / "out.onnx"), "--calib-frames", "6", "--judge-frames", "4"])
    printed = capsys.readouterr().err.strip().splitlines()
    assert any("other work is running" in line for line in printed)         # the user is told timings are off
    err = printed[-1]
    assert code == 2 and "fastest plan it timed ran 1.05x" in err
    assert not any(p.exists() for p in outputs_of(tmp_path / "out.onnx"))


def test_a_timing_probe_has_the_layers_of_the_file_it_stands_for(dense_file, tmp_path):
    """Speed depends on what runs, not on the weights: the probe of a raw cut has the int8 file's nodes and
    tensor shapes exactly (the guard passes a cut of the tiny network with no layer kept float at a wide budget)."""
    from core.deploy.onnx_export import export_onnx
    from core.deploy.runtime import read_onnx
    from core.deploy.timing_probe import int8_timing_probe
    from core.ssl import compute_scores, make_plan, prune_to_plan

    dense = load_checkpoint(dense_file).model.eval()
    cut = prune_to_plan(dense, make_plan(compute_scores(dense, "l1"), 0.5))
    frames = moving_frames(6, seed=2)
    probe = int8_timing_probe(cut, frames, "half")
    check = export_onnx(cut, tmp_path / "cut.onnx", precision="int8", calib=frames, max_drop=50.0, flow="half")
    assert check.ok and not check.kept_float

    def layout(steps):
        return {name: (sorted(n.op_type for n in g.graph.node),
                       sorted(tuple(t.dims) for t in g.graph.initializer if len(t.dims) == 4))
                for name, g in steps.items()}

    from core.deploy.runtime import step_models

    assert layout(probe._steps) == layout(step_models(read_onnx(tmp_path / "cut.onnx")[0]))

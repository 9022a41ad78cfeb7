"""Say what was made (issue 19, item 5): a raw, unrecovered cut is named as such by `sr` and `export`, the int8
guard judges a file by its fidelity to the float model and never by a negative drop, and a float model worse
than bicubic upscaling is not quantized at all."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from core.cli import main
from core.deploy.check import ExportCheck, implied_drop, judged_drop, within_budget
from core.deploy.quantize import (CalibrationError, NotWorthQuantizingError, bicubic_upscale, check_worth_quantizing,
                                  fewest_float)
from core.io.checkpoint import load_checkpoint, save_model
from core.io.demo import demo_clip_dir
from core.io.frames import read_clip, write_frames
from tests.helpers import dense_and_raw_cut, tiny_model


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return dense_and_raw_cut(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def lr_clip():
    return demo_clip_dir() / "BIx4"


# -- 1. sr and export name a raw cut --------------------------------------------------------------------------
def test_sr_of_a_raw_cut_warns_in_one_line_and_still_writes(files, lr_clip, tmp_path, capsys):
    _, cut = files
    capsys.readouterr()
    assert main(["sr", str(cut), str(lr_clip), str(tmp_path / "out"), "--max-frames", "3", "--json"]) == 0
    captured = capsys.readouterr()
    (line,) = _warnings(captured.err)
    assert str(cut) in line and "raw cut" in line and "--calib" in line and "train" in line
    data = json.loads(captured.out)
    assert data["raw_cut"] is True and data["frames"] == 3
    assert read_clip(tmp_path / "out").frames.shape[0] == 3


@pytest.fixture()
def measured_fine(monkeypatch):
    """`sr` measures a pruned network against bicubic upscaling (tests/test_trust_claims.py); these tiny random
    networks are no better than bicubic, so a network measured as good is stood in for."""
    import core.recover.measured as measured

    monkeypatch.setattr(measured, "margin_over_bicubic", lambda *a: 1.0)


@pytest.mark.parametrize("how", ["dense", "trained", "reconstructed"])
def test_sr_of_a_dense_trained_or_reconstructed_network_does_not_warn(files, lr_clip, tmp_path, capsys, how,
                                                                      measured_fine):
    dense, cut = files
    model = dense
    if how != "dense":
        loaded = load_checkpoint(cut)
        meta = dict(loaded.meta)
        if how == "trained":
            meta.pop("training")
            meta["stages"] = ["sir", "finetune"]
        else:
            meta["reconstruction"] = {"method": "test", "frames": 3}
        model = save_model(loaded.model, tmp_path / f"{how}.pth", meta)
    capsys.readouterr()
    assert main(["sr", str(model), str(lr_clip), str(tmp_path / "out"), "--max-frames", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert _warnings(captured.err) == [] and json.loads(captured.out)["raw_cut"] is False


def test_an_onnx_file_records_the_meta_sr_reads_its_status_from(files):
    """What `export` writes into an .onnx (``ssl_vsr.meta``: the source model file's meta) is what `sr` reads."""
    from core.run_cli import _onnx_source_meta
    from core.deploy.onnx_graph import base_metadata
    from core.recover.status import recovery_status

    dense, cut = files
    for path, raw in ((cut, True), (dense, False)):
        loaded = load_checkpoint(path)
        meta = base_metadata(loaded.model, "fp32", loaded.meta)
        assert recovery_status(_onnx_source_meta(meta), loaded.is_pruned).raw_cut is raw
    assert _onnx_source_meta({"ssl_vsr.meta": "{damaged"}) == {} and _onnx_source_meta({}) == {}


@pytest.mark.slow
def test_an_onnx_file_of_a_raw_cut_carries_its_status_to_sr(files, lr_clip, tmp_path, capsys):
    """`export` of a raw cut warns and goes on; the .onnx records the source's meta, and `sr` on it warns too."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from core.deploy.runtime import read_onnx

    _, cut = files
    onnx_path = tmp_path / "cut.onnx"
    capsys.readouterr()
    assert main(["export", str(cut), "--format", "onnx", "--out", str(onnx_path), "--json"]) == 0
    captured = capsys.readouterr()
    (line,) = _warnings(captured.err)
    assert str(cut) in line and "raw cut" in line
    assert json.loads(captured.out)["raw_cut"] is True and onnx_path.is_file()
    assert json.loads(read_onnx(onnx_path)[1]["ssl_vsr.meta"])["training"] == "none (zero-shot)"
    assert main(["sr", str(onnx_path), str(lr_clip), str(tmp_path / "out"), "--max-frames", "2"]) == 0
    (line,) = _warnings(capsys.readouterr().err)
    assert str(onnx_path) in line and "raw cut" in line


# -- 2. the int8 guard ----------------------------------------------------------------------------------------
def test_int8_export_of_a_raw_cut_is_refused_and_leaves_nothing(files, lr_clip, tmp_path, capsys):
    _, cut = files
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    capsys.readouterr()
    rc = main(["export", str(cut), "--format", "onnx", "--precision", "int8", "--calib", str(lr_clip),
               "--out", str(out_dir / "cut.int8.onnx")])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "not worth quantizing" in lines[0] and "bicubic" in lines[0] and "train" in lines[0]
    assert list(out_dir.iterdir()) == []


def test_the_guard_never_accepts_a_negative_drop():
    # The field report: a raw cut's int8 file "dropped" -11.7 dB and was accepted against a 0.3 dB budget.
    assert not within_budget(-11.7, 0.3)
    assert not within_budget(-11.7, 0.3, fidelity_drop=0.0)
    assert judged_drop(-11.7) == 11.7
    assert not within_budget(-0.5, 0.3, fidelity_drop=0.1)
    # Fidelity governs when the measured drop is small or negative by chance.
    assert not within_budget(0.05, 0.3, fidelity_drop=0.8) and not within_budget(-0.05, 0.3, fidelity_drop=0.8)
    assert within_budget(-0.05, 0.3, fidelity_drop=0.1) and judged_drop(-0.05, 0.1) == 0.1
    assert within_budget(0.2, 0.3, fidelity_drop=0.1) and judged_drop(0.2, 0.1) == 0.2
    assert not within_budget(math.nan, 0.3) and not within_budget(0.1, 0.3, fidelity_drop=math.nan)
    # What an independent error of a given fidelity costs a model of a given quality.
    assert implied_drop(30.0, 30.0) == pytest.approx(10 * math.log10(2))
    assert implied_drop(30.0, 41.46) == pytest.approx(0.3, abs=0.01)
    assert implied_drop(30.0, math.inf) == 0.0 and implied_drop(math.inf, 50.0) == math.inf
    # The search for float layers does not stop at a negative drop either.
    calls = []

    def attempt(n):
        calls.append(n)
        return f"{n} float", (-11.7 if n < 4 else 0.1)
    count, result, drop, _ = fewest_float(8, attempt, 0.3, ("all int8", -11.7))
    assert count == 4 and result == "4 float" and drop == 0.1 and calls[:3] == [1, 2, 4]


def test_an_export_check_is_judged_by_its_charged_drop_and_reports_fidelity(tmp_path):
    base = dict(path=tmp_path / "q.onnx", format="onnx", max_abs_diff=0.3, tolerance=None, precision="int8",
                max_drop=0.3)
    negative = ExportCheck(**base, psnr_drop=-11.7)                       # no fidelity: by its size
    assert not negative.ok and "OVER BUDGET" in negative.summary()
    fine = ExportCheck(**base, psnr_drop=-0.02, fidelity_db=44.1, fidelity_lr_db=55.3, judged_drop=0.12)
    assert fine.ok and fine.charged_drop == 0.12
    text = fine.summary()
    assert "fidelity to float 44.10 dB" in text and "55.30 dB downscaled" in text and "judged 0.120" in text
    off = ExportCheck(**base, psnr_drop=0.01, fidelity_db=25.0, fidelity_lr_db=30.0, judged_drop=4.2)
    assert not off.ok and "OVER BUDGET" in off.summary()


def _smooth(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = [0.5 + 0.4 * np.sin((xx + 2 * i) / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * [1.0, 0.8, 0.6]
           + rng.normal(0, 0.03, (h, w, 3)) for i in range(t)]
    return (np.clip(np.stack(out), 0, 1) * 255).astype(np.uint8)


def test_a_model_worse_than_bicubic_is_not_worth_quantizing():
    frames = _smooth(4, 36, 40)
    bicubic = bicubic_upscale(frames)
    assert bicubic.shape == (4, 144, 160, 3)
    assert check_worth_quantizing(bicubic, frames) == pytest.approx(0.0)       # as good as bicubic: allowed
    noise = np.random.default_rng(1).integers(0, 256, bicubic.shape, dtype=np.uint8)
    with pytest.raises(NotWorthQuantizingError, match="not worth quantizing.*LR consistency.*bicubic"):
        check_worth_quantizing(noise, frames)
    gt = np.clip(bicubic + np.random.default_rng(2).normal(0, 3, bicubic.shape), 0, 255).astype(np.uint8)
    with pytest.raises(NotWorthQuantizingError, match="vs the calibration GT"):
        check_worth_quantizing(noise, frames, gt)
    assert check_worth_quantizing(gt, frames, gt) == math.inf                    # against GT when given
    with pytest.raises(CalibrationError, match=r"frames are 4x160 \(height x width\).* is 144x160"):
        check_worth_quantizing(gt, frames, gt[:, :4])


def test_a_candidate_is_judged_by_its_fidelity_with_and_without_gt():
    from core.deploy.quantize import measure_candidate, y_psnr_clip

    frames = _smooth(3, 32, 36)
    ref = bicubic_upscale(frames)                                     # "the float output"
    rng = np.random.default_rng(3)
    sr = np.clip(ref + rng.normal(0, 2.0, ref.shape), 0, 255).round().astype(np.uint8)   # "int8": ~47 dB away (Y)
    m = measure_candidate(sr, ref, 30.0)                              # no GT: a float model estimated at 30 dB
    assert m.fidelity_db == pytest.approx(y_psnr_clip(sr, ref)) and 40 < m.fidelity_db < 52
    assert m.fidelity_lr_db > m.fidelity_db                           # the x4 downscale averages noise away
    assert m.drop == m.judged == pytest.approx(implied_drop(30.0, m.fidelity_db))
    assert m.judged < measure_candidate(sr, ref, 40.0).judged        # a better float model loses more to the same error
    gt = ref                                                          # against GT: measured, and at least implied
    by_gt = measure_candidate(sr, ref, math.inf, lambda x: y_psnr_clip(x, gt))
    assert by_gt.judged == math.inf                                   # float is the GT itself; int8 is not


@pytest.mark.slow
def test_int8_export_reports_fidelity(tmp_path, capsys):
    """A float model better than bicubic against its GT (here: its own output plus a little noise, so the test
    needs no trained network) is quantized; the JSON, the summary and the file report the fidelity."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import torch

    from core.deploy.runtime import read_onnx
    from core.io.frames import frames_to_tensor, tensor_to_frames

    model = tiny_model("basicvsr-uni", 8, 1)
    path = save_model(model, tmp_path / "m.pth")
    frames = _smooth(3, 32, 36)
    with torch.no_grad():
        sr = tensor_to_frames(model(frames_to_tensor(frames)))
    noise = np.random.default_rng(2).normal(0, 1.5, sr.shape)
    write_frames(frames, tmp_path / "lr")
    write_frames(np.clip(sr + noise, 0, 255).round().astype(np.uint8), tmp_path / "gt")
    out = tmp_path / "m.int8.onnx"
    capsys.readouterr()
    rc = main(["export", str(path), "--format", "onnx", "--precision", "int8", "--calib", str(tmp_path / "lr"),
               "--calib-gt", str(tmp_path / "gt"), "--max-drop", "20", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0 and _warnings(captured.err) == [], captured.err
    data = json.loads(captured.out)
    assert data["precision"] == "int8" and data["verified"] and data["raw_cut"] is False
    assert 10 < data["fidelity_db"] < 100 and 10 < data["fidelity_lr_db"] < 100
    assert data["judged_drop_db"] >= abs(data["psnr_drop_db"]) and data["judged_drop_db"] <= 20
    meta = read_onnx(out)[1]
    assert float(meta["ssl_vsr.int8_fidelity_db"]) == pytest.approx(data["fidelity_db"], abs=1e-3)
    assert float(meta["ssl_vsr.int8_judged_drop_db"]) == pytest.approx(data["judged_drop_db"], abs=1e-3)


# -- 1b. a cut recovered on the synthetic demo clip alone says so --------------------------------------------
def _notes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("note:")]


def test_prune_on_the_bundled_demo_clip_says_so_and_sr_repeats_it(files, lr_clip, tmp_path, capsys, measured_fine):
    """Reconstruction calibrated on the demo clip (prune's default) scored below bicubic on real video it never saw:
    the file records the demo clip by name, and prune and sr each say it in one line."""
    dense, _ = files
    out = tmp_path / "demo_rec.pth"
    capsys.readouterr()
    assert main(["prune", str(dense), "--ratio", "0.5", "--align", "2", "--out", str(out)]) == 0
    (line,) = _notes(capsys.readouterr().err)
    assert str(out) in line and "demo clip" in line and "--calib" in line and "quick.yaml" in line
    assert load_checkpoint(out).meta["reconstruction"]["calib"] == "demo clip"
    assert main(["sr", str(out), str(lr_clip), str(tmp_path / "sr"), "--max-frames", "2"]) == 0
    (again,) = _notes(capsys.readouterr().err)
    assert str(out) in again and "demo clip" in again
    named = tmp_path / "named.pth"     # the bundled clip named by a path of its own is still the demo clip
    assert main(["prune", str(dense), "--ratio", "0.5", "--align", "2", "--calib",
                 str(lr_clip / ".." / "BIx4"), "--out", str(named)]) == 0
    assert load_checkpoint(named).meta["reconstruction"]["calib"] == "demo clip"
    assert len(_notes(capsys.readouterr().err)) == 1


def test_prune_on_the_users_own_clip_has_no_demo_note(files, tmp_path, capsys):
    dense, _ = files
    own = tmp_path / "my_video"
    write_frames(read_clip(demo_clip_dir() / "BIx4").frames[:13], own)
    out = tmp_path / "own_rec.pth"
    capsys.readouterr()
    assert main(["prune", str(dense), "--ratio", "0.5", "--align", "2", "--calib", str(own), "--out", str(out)]) == 0
    assert _notes(capsys.readouterr().err) == []
    assert load_checkpoint(out).meta["reconstruction"]["calib"] == "my_video"

"""Reconstruction at the cut (core.recover): it lowers the error against the dense network on frames it never
saw, needs no ground truth, changes nothing where nothing was cut, never touches its inputs, and refuses bad
calibration clips in one line before any work."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import torch

from core.cli import main
from core.io.checkpoint import load_checkpoint, save_model
from core.io.demo import demo_clip_dir
from core.io.source import open_source
from core.data.calib import CalibrationError, check_frames
from core.recover.reconstruct import ReconstructSettings, reconstruct
from core.ssl import compute_scores, prune_to_plan
from core.ssl.plan import plan_with
from core.ssl.settings import PlanSettings

from .helpers import tiny_model

FAST = ReconstructSettings(rows=4096, max_frames=8, holdout=4)


@pytest.fixture(scope="module")
def demo_lr() -> np.ndarray:
    return np.stack(list(open_source(demo_clip_dir() / "BIx4")))


def _cut(model, ratio: float):
    plan = plan_with(compute_scores(model, "l1-mean"), PlanSettings(ratio, "l1-mean", 1, 4), (64, 112))
    return plan, prune_to_plan(model, plan)


def _out(model, frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
    with torch.no_grad():
        return model(x)


def _rel_err(model, dense, frames) -> float:
    ref = _out(dense, frames)
    return float((_out(model, frames) - ref).norm() / ref.norm())


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
def test_lowers_the_error_on_frames_it_was_not_calibrated_on(demo_lr, variant):
    dense = tiny_model(variant, 16, 3)
    plan, cut = _cut(dense, 0.5)
    calib, held_out = demo_lr[:12], demo_lr[12:20]      # fitted on 8, judged on the 4 after them
    recovered, report = reconstruct(dense, cut, plan, calib, FAST)
    raw, after = _rel_err(cut, dense, held_out), _rel_err(recovered, dense, held_out)
    assert after < 0.5 * raw, (raw, after)
    assert report.psnr_after > report.psnr_raw
    assert report.frames == 8 and report.heldout_frames == 4 and report.layers_refit > 0
    assert report.recovered == (report.psnr_heldout > report.psnr_bicubic_heldout)
    assert report.to_meta()["heldout_frames"] == 4 and "4 later frames" in report.summary()


@pytest.mark.parametrize("available, split", [(30, (8, 5)), (13, (8, 5)), (10, (5, 5)), (4, (3, 1)), (3, (3, 0))])
def test_holds_out_the_last_frames_while_enough_remain_to_fit(available, split):
    from core.recover.reconstruct import _split

    assert _split(available, ReconstructSettings()) == split


def test_recovered_is_judged_on_the_held_out_frames():
    from core.recover.reconstruct import ReconstructReport

    fitted_only = dict(frames=15, size=(64, 112), seconds=1.0, psnr_raw=5.0, psnr_after=25.0, psnr_bicubic=21.0,
                       layers_refit=10, layers_kept=0)
    assert ReconstructReport(**fitted_only).recovered                   # no held-out frames: the fitted ones judge
    diverged_later = ReconstructReport(**fitted_only, heldout_frames=5, psnr_heldout=8.0, psnr_bicubic_heldout=21.0)
    assert not diverged_later.recovered and not diverged_later.to_meta()["recovered"]


def test_changes_nothing_at_ratio_zero(demo_lr):
    dense = tiny_model("basicvsr", 16, 2)
    plan, cut = _cut(dense, 0.0)
    recovered, _ = reconstruct(dense, cut, plan, demo_lr[:6], FAST)
    assert float((_out(recovered, demo_lr[:6]) - _out(dense, demo_lr[:6])).abs().max()) <= 1e-5


def test_leaves_both_networks_as_they_were(demo_lr):
    dense = tiny_model("basicvsr", 16, 2)
    plan, cut = _cut(dense, 0.5)
    before = {k: v.clone() for k, v in (*dense.state_dict().items(), *(("cut." + k, v) for k, v in
                                                                          cut.state_dict().items()))}
    reconstruct(dense, cut, plan, demo_lr[:6], FAST)
    after = {**dense.state_dict(), **{"cut." + k: v for k, v in cut.state_dict().items()}}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_check_frames_refuses_what_cannot_calibrate():
    ok = np.zeros((3, 16, 16, 3), np.uint8)
    assert check_frames(ok) is ok
    for bad, why in ((ok[:2], "too short"), (np.zeros((3, 8, 40, 3), np.uint8), "too small"),
                     (ok.astype(np.float32), "expected RGB frames"), (ok[..., 0], "expected RGB frames")):
        with pytest.raises(CalibrationError, match=why):
            check_frames(bad)


# -- the command line -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dense_file(tmp_path_factory):
    return save_model(tiny_model("basicvsr", 16, 2), tmp_path_factory.mktemp("dense") / "dense.pth")


def _write_clip(folder, frames: np.ndarray) -> None:
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def test_prune_calibrates_on_lr_frames_alone_and_records_it(tmp_path, dense_file, demo_lr, capsys):
    lr = tmp_path / "my_clip"                 # LR frames only: no GT anywhere near them
    _write_clip(lr, demo_lr[:10])
    out = tmp_path / "pruned.pth"
    assert main(["prune", str(dense_file), "--ratio", "0.5", "--align", "4", "--calib", str(lr),
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "reconstructed" in captured.out and "warning" not in captured.err
    meta = load_checkpoint(out).meta
    assert meta["reconstruction"]["calib"] == "my_clip" and meta["reconstruction"]["frames"] == 5
    assert meta["reconstruction"]["heldout_frames"] == 5       # judged on frames it was not fitted on
    assert meta["reconstruction"]["psnr_vs_dense"] > meta["reconstruction"]["psnr_vs_dense_raw"]


def test_no_reconstruct_writes_the_raw_cut_and_says_so(tmp_path, dense_file, capsys):
    out = tmp_path / "raw.pth"
    assert main(["prune", str(dense_file), "--ratio", "0.5", "--no-reconstruct", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "raw cut" in err and len(err.strip().splitlines()) == 1
    assert "reconstruction" not in load_checkpoint(out).meta


def _bad_clips(tmp_path, demo_lr):
    short = tmp_path / "short"
    _write_clip(short, demo_lr[:2])
    tiny = tmp_path / "tiny"
    _write_clip(tiny, np.zeros((4, 8, 8, 3), np.uint8))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a frame")
    text = tmp_path / "clip.txt"
    text.write_text("not a clip")
    return {"too short": short, "too small": tiny, "no image frames": empty, "neither a folder": text,
            "not found": tmp_path / "missing"}


def test_bad_calibration_is_one_line_before_any_work(tmp_path, dense_file, demo_lr, capsys, monkeypatch):
    import core.cli

    def no_work(*a, **k):
        raise AssertionError("the checkpoint was loaded before the calibration clip was checked")

    monkeypatch.setattr(core.cli, "_load_for_plan", no_work)
    for why, clip in _bad_clips(tmp_path, demo_lr).items():
        out = tmp_path / "p.pth"
        started = time.perf_counter()
        rc = main(["prune", str(dense_file), "--ratio", "0.5", "--calib", str(clip), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error:") and why in err[0], (why, err)
        assert not out.exists() and time.perf_counter() - started < 5


def test_calib_with_no_reconstruct_and_a_weight_criterion_is_refused(tmp_path, dense_file, capsys):
    rc = main(["prune", str(dense_file), "--ratio", "0.5", "--criterion", "l1", "--no-reconstruct", "--calib", "x",
               "--out", str(tmp_path / "p.pth")])
    assert rc == 2 and "--no-reconstruct" in capsys.readouterr().err


def test_a_reconstruction_that_stays_below_bicubic_is_not_called_recovered():
    from core.recover.status import recovery_status

    base = {"training": "none (zero-shot)"}
    assert recovery_status(base, pruned=True).raw_cut
    assert not recovery_status({**base, "reconstruction": {"recovered": True}}, pruned=True).raw_cut
    below = recovery_status({**base, "reconstruction": {"recovered": False}}, pruned=True)
    assert below.raw_cut and "not recovered" in below.summary()
    assert not recovery_status({"stages": ["sir", "finetune"]}, pruned=True).raw_cut
    assert not recovery_status({}, pruned=False).raw_cut

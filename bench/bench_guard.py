"""Which no-GT reference predicts the drop int8 costs against GT? Every predictor beside the real drop, per clip.

    python bench/bench_guard.py --clip NAME=FOLDER [--clip NAME=FOLDER ...] [--calib-frames 10] [--later 20]
                                [--ratio 0.24]

Every ``--clip`` is a folder holding ``BIx4/`` and ``GT/``. On each clip, three float networks are quantized all
int8 (the guard's first attempt: no layer kept float) on the first 8 of ``--calib-frames`` LR frames: the dense
network with SpyNet as trained, the same with half flow, and a kept-stream cut (``--ratio``, contribution
criterion) reconstructed on the calibration frames, with half flow. For each, the predictors are computed on the
calibration frames without GT, and the real drop (float network as trained minus int8 file, Y-PSNR against GT) on
the calibration frames and on the ``--later`` frames after them:

- ``independent``: the guard's formula, the int8 error and the float network's error against GT independent
  (``implied_drop``), the float network's quality estimated at quarter scale plus the fixed bias;
- ``vs dense``: the int8 file's extra squared error against the dense network's output (the error correlated with
  the float network's own departure from dense is counted, not assumed away), in dB at the same estimated quality;
- ``quarter direct``: both networks run on the calibration frames downscaled x4 and scored against those frames
  (GT known there): the drop measured at a quarter of the scale;
- ``oracle quality``: the guard's formula with the float network's real quality on the calibration frames (GT):
  how much of the error is the quality estimate and how much the independence.
GT is read only to score.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from common import cpu_flags, print_table  # noqa: F401  (puts the project on sys.path)
from core.compress.judge import sr_frames
from core.data.degrade import bi_degrade
from core.deploy.check import implied_drop
from core.deploy.quantize import LOW_SCALE_BIAS_DB, MAX_CALIB_FRAMES
from core.deploy.timing_probe import int8_timing_probe
from core.io.checkpoint import load_checkpoint
from core.io.frames import read_clip
from core.io.weights import official_weight
from core.metrics import y_psnr_clip, y_psnr_frames
from core.recover.reconstruct import ReconstructSettings, reconstruct
from core.ssl import LayerOverride, RECOMMENDED_ALIGN, make_plan, prune_to_plan, scores_on
from core.ssl.units import stream_layer_names
from core.threads import set_threads

PEAK = 255.0 ** 2


def _named(text: str) -> tuple[str, str]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, path


def _mse(psnr_db: float) -> float:
    return PEAK / 10.0 ** (psnr_db / 10.0)


def _db(mse: float) -> float:
    return 10.0 * np.log10(PEAK / mse)


def _crop4(frames: np.ndarray) -> np.ndarray:
    h, w = frames.shape[1] // 4 * 4, frames.shape[2] // 4 * 4
    return np.ascontiguousarray(frames[:, :h, :w])


def _kept_stream_cut(dense, calib: np.ndarray, ratio: float, name: str):
    scores = scores_on(dense, "contribution", calib, name)
    locks = {layer: LayerOverride(locked=True) for layer in stream_layer_names(scores.spec)}
    plan = make_plan(scores, ratio, align=RECOMMENDED_ALIGN, overrides=locks)
    model, _ = reconstruct(dense, prune_to_plan(dense, plan), plan, calib,
                           ReconstructSettings(max_frames=len(calib), holdout=0), calib_name=name)
    return model.eval(), plan.mac_ratio


def _row(clip: str, recipe: str, dense, flt, int8, calib, calib_gt, later, later_gt) -> list:
    """The predictors on ``calib`` (no GT) and the real drops on ``calib`` and ``later`` (GT)."""
    f_sr, q_sr, d_sr = sr_frames(flt, calib), sr_frames(int8, calib), sr_frames(dense, calib)
    quarter = _crop4(calib)
    small = bi_degrade(quarter)
    q_float_quarter = y_psnr_frames(sr_frames(flt, small), quarter)
    q_int8_quarter = y_psnr_frames(sr_frames(int8, small), quarter)
    q_est = q_float_quarter + LOW_SCALE_BIAS_DB
    fidelity = y_psnr_clip(q_sr, f_sr)
    extra = _mse(y_psnr_clip(q_sr, d_sr)) - _mse(y_psnr_clip(f_sr, d_sr))
    m_est = _mse(q_est)
    vs_dense = _db(m_est) - _db(max(m_est + extra, 1e-12))
    q_true = y_psnr_frames(f_sr, calib_gt)
    real_calib = q_true - y_psnr_frames(q_sr, calib_gt)
    real_later = y_psnr_frames(sr_frames(flt, later), later_gt) - y_psnr_frames(sr_frames(int8, later), later_gt)
    return [clip, recipe, q_est, q_true, fidelity, implied_drop(q_est, fidelity), vs_dense,
            q_float_quarter - q_int8_quarter, implied_drop(q_true, fidelity), real_calib, real_later]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=_named, action="append", required=True)
    p.add_argument("--calib-frames", type=int, default=10)
    p.add_argument("--later", type=int, default=20)
    p.add_argument("--ratio", type=float, default=0.24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cut-on", action="append", default=None,
                   help="clips where the kept-stream cut is studied too (default: every clip; a cut's "
                        "reconstruction costs several CPU-minutes)")
    args = p.parse_args()
    set_threads(args.threads)
    dense = load_checkpoint(official_weight("REDS4")).model.eval()
    rows = []
    for name, folder in args.clip:
        total = args.calib_frames + args.later
        lr = read_clip(f"{folder}/BIx4", max_frames=total).frames
        gt = read_clip(f"{folder}/GT", max_frames=total).frames
        n = args.calib_frames
        calib, later = lr[:n], lr[n:]
        recipes = [("dense, full flow", dense, "full"), ("dense, half flow", dense, "half")]
        if args.cut_on is None or name in args.cut_on:
            cut, mac_ratio = _kept_stream_cut(dense, calib, args.ratio, name)
            recipes.append((f"kept stream {mac_ratio:.2f}x, half flow", cut, "half"))
        int8_frames = calib[:MAX_CALIB_FRAMES]
        for recipe, flt, flow in recipes:
            int8 = int8_timing_probe(flt, int8_frames, flow, calibrate_on=MAX_CALIB_FRAMES)
            rows.append(_row(name, recipe, dense, flt, int8, calib, gt[:n], later, gt[n:]))
            print("  " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in rows[-1]), flush=True)
    print(f"\nbench_guard: all-int8 files calibrated on the first {MAX_CALIB_FRAMES} LR frames of each clip; "
          f"predictors on its first {args.calib_frames} frames without GT; real drop = float network as trained "
          f"minus int8 file, Y-PSNR vs GT on those frames and on the {args.later} after them; torch "
          f"{torch.__version__}, {args.threads} threads; CPU {cpu_flags()}\n")
    print_table(["clip", "recipe", "quality est.", "quality real", "fidelity", "independent", "vs dense",
                 "quarter direct", "oracle quality", "real drop (calib)", "real drop (later)"], rows)
    predictors = ("independent", "vs dense", "quarter direct", "oracle quality")
    real = np.array([r[-1] for r in rows])
    summary = []
    for i, label in enumerate(predictors):
        err = np.array([r[5 + i] for r in rows]) - real
        summary.append([label, float(np.abs(err).max()), float(err.mean()), int((np.abs(err) <= 0.2).sum()),
                        len(rows)])
    print("\nPredictor error against the real drop on later frames (dB)")
    print_table(["predictor", "worst |error|", "mean error", "within 0.2", "rows"], summary)


if __name__ == "__main__":
    main()

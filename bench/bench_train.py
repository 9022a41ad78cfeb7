"""Training speed: SIR and finetune iterations per second at the paper's patch (LR 64) and clip length (15).

SIR runs on the dense BasicVSR (64 channels, 30 blocks; official REDS4 weights when installed) with scale
factors; finetune on that network pruned at ratio 0.5, with the TF teacher forward pass. Data: the demo clip
(LR 64x112 HxW, 24 frames). Prints the median seconds per iteration over the timed iterations (the first is
warm-up). On CUDA it also times mixed precision and channels-last; on CPU those paths do not apply.

    python bench/bench_train.py [--iters 3] [--device cpu|cuda] [--batch 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.events import Progress  # noqa: E402
from core.io.checkpoint import load_checkpoint, save_model  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.models.basicvsr import BasicVSR  # noqa: E402
from core.models.spec import dense_spec  # noqa: E402
from core.ssl import compute_scores, make_plan, prune_to_plan  # noqa: E402
from core.train.config_load import config_from_dict  # noqa: E402
from core.train.pipeline import run_training  # noqa: E402


def seconds_per_iteration(raw: dict, run_dir: Path) -> float:
    stamps: list[float] = []
    run_training(config_from_dict(raw), run_dir,
                 lambda e: stamps.append(time.perf_counter()) if isinstance(e, Progress) else None)
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per stage (plus one warm-up)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    demo = demo_clip_dir()
    n = args.iters + 1
    variants = [("fp32", "off", False)]
    if args.device.startswith("cuda"):
        variants += [("bf16 autocast", "bf16", False), ("fp16 + GradScaler", "fp16", False),
                     ("bf16 + channels_last", "bf16", True)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dense = load_checkpoint(official_weight("REDS4")).model if official_weight("REDS4") else \
            BasicVSR(dense_spec("basicvsr", 64, 30))
        dense_file = save_model(dense, tmp / "dense.pth")
        pruned_file = save_model(prune_to_plan(dense, make_plan(compute_scores(dense, "l1"), 0.5)), tmp / "p.pth")
        base = {"data": {"kind": "folder", "root": str(demo / "GT"), "lr_root": str(demo / "BIx4"),
                         "clip_length": 15, "patch_size": 64, "batch_size": args.batch, "num_workers": 2},
                "runtime": {"device": args.device, "log_every": 1, "checkpoint_every": 10**6}}
        for label, amp, cl in variants:
            runtime = {**base["runtime"], "amp": amp, "channels_last": cl}
            sir = {**base, "stages": ["sir"], "model": {"weights": str(dense_file)}, "runtime": runtime,
                   "sir": {"delta": 1.0, "t1": 1, "tau": 1.0, "stabilize_iters": n - 1}}
            ft = {**base, "stages": ["finetune"], "model": {"weights": str(pruned_file)}, "runtime": runtime,
                  "finetune": {"iterations": n, "teacher": str(dense_file), "tf_weight": 1.0}}
            for stage, raw in (("SIR (dense + gamma)", sir), ("finetune (pruned 0.5 + TF)", ft)):
                spi = seconds_per_iteration(raw, tmp / f"{stage[:3]}-{amp}-{cl}")
                rows.append((stage, label, spi))
    print(f"training speed, device {args.device}, batch {args.batch}, clip 15, LR patch 64 (GT 256), "
          f"median of {args.iters} iterations")
    print(f"{'stage':<28} {'precision':<22} {'s/iter':>8} {'iter/s':>8} {'frames/s':>9}")
    for stage, label, spi in rows:
        print(f"{stage:<28} {label:<22} {spi:>8.2f} {1 / spi:>8.3f} {15 * args.batch / spi:>9.1f}")


if __name__ == "__main__":
    main()

"""Speed is the point of pruning: dense vs physically pruned inference, realized speed-up next to the MAC
ratio, with and without rounding each layer's width to a multiple of 8; and how fast a plan recomputes.

Usage: python bench/bench_prune.py [--frames 10] [--size 180x320] [--repeats 3] [--ratios 0.3 0.5 0.7]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from common import median_seconds, print_table
from core.device import resolve_device
from core.io.checkpoint import load_checkpoint
from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.ssl import compute_scores, make_plan, prune_to_plan


def plan_latency(scores, n: int = 60) -> tuple[float, float]:
    make_plan(scores, 0.5)                      # MAC cache warm-up (once per model and frame size)
    times = []
    for r in np.random.default_rng(0).uniform(0, 0.95, n):
        t = time.perf_counter()
        make_plan(scores, float(r))
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, max(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--aligns", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="NHWC weights, as core.infer.super_resolve uses on the CPU (default on)")
    a = ap.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    device = resolve_device(a.device)
    path = official_weight("REDS4")
    model = load_checkpoint(path).model if path else BasicVSR(dense_spec()).eval()
    scores = compute_scores(model)
    med, worst = plan_latency(scores)
    print(f"plan recompute for full BasicVSR ({scores.n_units} units): median {med:.2f} ms, worst {worst:.2f} ms\n")

    x = torch.rand(1, a.frames, 3, h, w, device=device)

    def timed(net: BasicVSR) -> float:
        net = net.to(device).eval()
        if a.channels_last:
            net = net.to(memory_format=torch.channels_last)

        def run() -> None:
            with torch.no_grad():
                net(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
        return median_seconds(run, a.repeats)

    dense_t = timed(model)
    rows = [["dense", "-", model.count_parameters(False), make_plan(scores, 0.0, frame_size=(h, w)).before.macs / 1e9,
             "1.00", "1.00", dense_t / a.frames, "1.00", "-"]]
    for ratio in a.ratios:
        for align in a.aligns:
            plan = make_plan(scores, ratio, align=align, frame_size=(h, w))
            pruned = prune_to_plan(model, plan)
            t = timed(pruned)
            total_ratio = (plan.before.macs + plan.before.macs_spynet) / (plan.after.macs + plan.after.macs_spynet)
            speedup = dense_t / t
            rows.append([f"{plan.achieved_ratio:.2f}", align, plan.after.params, plan.after.macs / 1e9,
                         f"{plan.mac_ratio:.2f}", f"{total_ratio:.2f}", t / a.frames, f"{speedup:.2f}",
                         f"{speedup / total_ratio:.2f}"])
    layout = "channels-last" if a.channels_last else "NCHW"
    print(f"{a.frames} frames at {h}x{w} on {device} ({layout}), median of {a.repeats} runs; MAC ratio 'net' excludes "
          f"SpyNet, 'all' includes it (SpyNet is never pruned, so 'all' is what a clip can gain)")
    print_table(["ratio", "align", "params", "GMAC/frame", "MAC ratio net", "MAC ratio all", "s/frame",
                 "speed-up", "speed-up / MAC all"], rows)


if __name__ == "__main__":
    main()

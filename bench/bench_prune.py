"""Speed is the point of pruning: dense vs physically pruned inference, realized speed-up next to the MAC
ratio, with each layer's width exact or rounded to a multiple of 8 or 16; and how fast a plan recomputes.

Usage: python bench/bench_prune.py [--frames 10] [--size 180x320] [--repeats 5] [--ratios 0.3 0.5 0.7]
                                   [--aligns 1 8 16] [--keep-stream] [--no-retain]

``--keep-stream`` adds, beside each plan, the plan that keeps the hidden stream whole (``prune --keep-stream``)
at the same MAC ratio (when it can reach it): does a plan that cuts only the blocks' inner filters and the head run
as fast per MAC as one that also cuts the channels each block reads and writes?
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import numpy as np
import torch

from common import add_allocator_flag, apply_allocator, cpu_flags, print_table
from core.device import resolve_device
from core.io.checkpoint import load_checkpoint
from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.ssl.settings import LayerOverride
from core.ssl.units import stream_layer_names


def plan_latency(scores, n: int = 60) -> tuple[float, float]:
    make_plan(scores, 0.5)                      # MAC cache warm-up (once per model and frame size)
    times = []
    for r in np.random.default_rng(0).uniform(0, 0.95, n):
        t = time.perf_counter()
        make_plan(scores, float(r))
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3, max(times) * 1e3


def kept_stream_plan(scores, mac_ratio: float, align: int, frame_size: tuple[int, int]):
    """The plan with every stream layer locked whose MAC ratio is closest to ``mac_ratio`` from above; None when
    even the deepest such cut saves less."""
    locks = {name: LayerOverride(locked=True) for name in stream_layer_names(scores.spec)}

    def plan(r: float):
        return make_plan(scores, r, align=align, overrides=locks, frame_size=frame_size)

    lo, hi = 0.0, 0.95
    if plan(hi).mac_ratio < mac_ratio * 0.99:
        return None
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if plan(mid).mac_ratio < mac_ratio else (lo, mid)
    return plan(hi)


def _runner(net: BasicVSR, device: torch.device) -> Callable[[torch.Tensor], None]:
    def run(clip: torch.Tensor) -> None:
        with torch.no_grad():
            net(clip)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    ap.add_argument("--aligns", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--keep-stream", action="store_true",
                    help="beside each plan, the plan keeping the hidden stream whole at the same MAC ratio")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="NHWC weights, as core.infer.super_resolve uses on the CPU (default on)")
    add_allocator_flag(ap)
    a = ap.parse_args()
    allocator = apply_allocator(a)
    h, w = (int(v) for v in a.size.split("x"))
    device = resolve_device(a.device)
    path = official_weight("REDS4")
    model = load_checkpoint(path).model if path else BasicVSR(dense_spec()).eval()
    scores = compute_scores(model)
    med, worst = plan_latency(scores)
    print(f"plan recompute for full BasicVSR ({scores.n_units} units): median {med:.2f} ms, worst {worst:.2f} ms\n")

    x = torch.rand(1, a.frames, 3, h, w, device=device)
    nets: dict[tuple[float, int, str] | None, tuple[BasicVSR, object]] = {
        None: (model, make_plan(scores, 0.0, frame_size=(h, w)))}
    for ratio in a.ratios:
        for align in a.aligns:
            plan = make_plan(scores, ratio, align=align, frame_size=(h, w))
            nets[(ratio, align, "cut")] = (prune_to_plan(model, plan), plan)
            kept = kept_stream_plan(scores, plan.mac_ratio, align, (h, w)) if a.keep_stream else None
            if kept is not None:
                nets[(ratio, align, "kept")] = (prune_to_plan(model, kept), kept)
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    runs = {key: _runner(net.to(device).eval().to(memory_format=layout), device) for key, (net, _) in nets.items()}
    for run in runs.values():  # warm-up on a short clip: oneDNN builds its kernels once per shape
        run(x[:, :3])
    # Rounds visit every network in turn, so the machine's drift falls on all of them alike; each speed-up is
    # the median over rounds of (dense time / pruned time) within a round.
    times: dict = {key: [] for key in runs}
    for _ in range(a.repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run(x)
            times[key].append(time.perf_counter() - start)

    dense_times = times[None]
    rows = [["dense", "-", "-", model.count_parameters(False), nets[None][1].before.macs / 1e9,
             "1.00", "1.00", statistics.median(dense_times) / a.frames, "1.00", "-", "-"]]
    for key, (_, plan) in nets.items():
        if key is None:
            continue
        total_ratio = (plan.before.macs + plan.before.macs_spynet) / (plan.after.macs + plan.after.macs_spynet)
        per_round = [d / t for d, t in zip(dense_times, times[key])]
        speedup = statistics.median(per_round)
        rows.append([f"{plan.achieved_ratio:.2f}", key[1], key[2], plan.after.params, plan.after.macs / 1e9,
                     f"{plan.mac_ratio:.2f}", f"{total_ratio:.2f}", statistics.median(times[key]) / a.frames,
                     f"{speedup:.2f}", f"{speedup / total_ratio:.2f}",
                     f"{min(per_round) / total_ratio:.2f}-{max(per_round) / total_ratio:.2f}"])
    print(f"{a.frames} frames at {h}x{w} on {device} ({'channels-last' if a.channels_last else 'NCHW'}, {allocator}), "
          f"{a.repeats} interleaved rounds (medians); MAC ratio 'net' excludes SpyNet, 'all' includes it "
          f"(SpyNet is never pruned, so 'all' is what a clip can gain); torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), CPU flags: {cpu_flags()}")
    print_table(["ratio", "align", "stream", "params", "GMAC/frame", "MAC ratio net", "MAC ratio all", "s/frame",
                 "speed-up", "speed-up / MAC all", "rounds' range"], rows)


if __name__ == "__main__":
    main()

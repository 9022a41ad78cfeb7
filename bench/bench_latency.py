"""Latency-aware planning, checked on this machine: for each ms-per-frame target, the latency table's prediction
against the measured time of the physically pruned network (marginal per frame, as ``sr`` runs it:
channels-last on the CPU), and the same network against the MAC-based global L1 plan with equal MACs.

Usage: python bench/bench_latency.py [--size 180x320] [--targets 0.7 0.5 0.35] [--threads N] [--repeats 3]
                                     [--frames 2 5] [--align16] [--refresh]

Targets are fractions of the dense network's predicted time. The table is read from the cache (built once
when absent, or with --refresh); its build time is printed.
"""
from __future__ import annotations

import argparse
import time

import torch

from common import print_table
from core.io.checkpoint import load_checkpoint
from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.profile.latency import latency_table, marginal_ms
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.ssl.target import fastest_ms, plan_for_latency


def mac_matched(scores, macs: int, align: int, size: tuple[int, int]):
    """The global L1 plan (``align``) whose network MACs are closest to ``macs`` (bisection on the ratio)."""
    lo, hi = 0.0, 0.95
    for _ in range(30):
        mid = (lo + hi) / 2
        if make_plan(scores, mid, align=align, frame_size=size).after.macs > macs:
            lo = mid
        else:
            hi = mid
    plans = [make_plan(scores, r, align=align, frame_size=size) for r in (lo, hi)]
    return min(plans, key=lambda p: abs(p.after.macs - macs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--targets", type=float, nargs="+", default=[0.7, 0.5, 0.35],
                    help="fractions of the dense network's predicted ms per frame")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per network (fastest kept)")
    ap.add_argument("--frames", type=int, nargs=2, default=[2, 5], help="the two clip lengths of the marginal time")
    ap.add_argument("--align16", action="store_true", help="also compare the global L1 plan with widths rounded to 16")
    ap.add_argument("--refresh", action="store_true", help="measure the latency table again")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    h, w = (int(v) for v in a.size.split("x"))
    device = torch.device("cpu")
    path = official_weight("REDS4")
    model = load_checkpoint(path).model if path else BasicVSR(dense_spec()).eval()
    scores = compute_scores(model, "l1")

    start = time.perf_counter()
    table = latency_table(device, (h, w), 64, True, refresh=a.refresh)
    read_s = time.perf_counter() - start
    dense_ms = table.predict_ms(model.spec)
    floor_ms = fastest_ms(scores, table)
    print(f"latency table: {table.device}, torch {torch.__version__}, {h}x{w}; built in {table.build_seconds:.1f} s "
          f"(this run {'measured' if read_s > 1 else 'read'} it in {read_s:.2f} s); fixed part {table.fixed_ms:.0f} ms, "
          f"dense predicted {dense_ms:.0f} ms/frame, fastest reachable {floor_ms:.0f} ms/frame")
    print(f"weights: {'official REDS4' if path else 'random (official weights absent)'}; measured = marginal per "
          f"frame ((t({a.frames[1]} frames) - t({a.frames[0]} frames)) / {a.frames[1] - a.frames[0]}, fastest of {a.repeats} "
          f"interleaved rounds), channels-last, {torch.get_num_threads()} thread(s)\n")

    rows, pairs = [], []
    for frac in a.targets:
        target = dense_ms * frac
        plan = plan_for_latency(scores, table, target, frame_size=(h, w))
        rivals = [("global L1, exact widths", mac_matched(scores, plan.after.macs, 1, (h, w)))]
        if a.align16:
            rivals.append(("global L1, widths of 16", mac_matched(scores, plan.after.macs, 16, (h, w))))
        measured = {}
        for label, p in [("latency-aware", plan), *rivals]:
            net = prune_to_plan(model, p)
            measured[label] = marginal_ms(net, device, (h, w), tuple(a.frames), repeats=a.repeats)
            predicted = table.predict_ms(p.spec_after)
            err = (predicted - measured[label]) / measured[label] * 100
            rows.append([f"{target:.0f}", label, f"{p.achieved_ratio:.3f}", f"{p.after.macs / 1e9:.1f}",
                         f"{predicted:.0f}", f"{measured[label]:.0f}", f"{err:+.1f}%"])
        for label, _ in rivals:
            pairs.append([f"{target:.0f}", label, f"{measured[label]:.0f}", f"{measured['latency-aware']:.0f}",
                          f"{measured[label] / measured['latency-aware']:.2f}x"])
    print_table(["target ms", "plan", "ratio", "GMAC/frame", "predicted ms", "measured ms", "pred. error"], rows)
    print("\nat (nearly) equal MACs: measured ms/frame of the MAC-based plan vs the latency-aware plan")
    print_table(["target ms", "MAC-based plan", "MAC-based ms", "latency-aware ms", "latency-aware speed-up"], pairs)


if __name__ == "__main__":
    main()

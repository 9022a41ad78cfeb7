"""Peak memory and seconds per frame against clip length: whole-clip inference vs the streaming engine.

Each row runs in its own child process (its peak RSS, ``ru_maxrss``, is its own). The network is the official
REDS4 BasicVSR when installed (else a random dense one of the same shape). Frames are a synthetic moving texture
generated one at a time (the streaming source never holds the clip); SR frames are converted to uint8 and dropped
(no encoder, so both modes time the same work). "stream" is ``core.stream`` with its defaults (backward states in
RAM while they fit the memory budget, else on disk); "stream-disk" forces every state to disk
(``memory_budget=0``), which prices the spill. Marginal s/frame = (time(long) - time(short)) / (long - short)
removes start-up costs. Usage:
    python bench/bench_stream.py [--threads 1] [--rows 64x64:10,50,200,1000 180x320:4,12] [--whole-max 200]
                                 [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from common import ROOT, print_table

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np, torch
from core.memory import retain_freed_memory
from core.io.checkpoint import load_checkpoint
from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
mode, t, h, w, threads, scratch = {args!r}
retain_freed_memory()                      # as main.py runs
torch.set_num_threads(threads)
path = official_weight("REDS4")
model = load_checkpoint(path).model if path is not None else BasicVSR(dense_spec("basicvsr")).eval()
base = np.random.default_rng(0).integers(0, 256, (h + 64, w + 64, 3), dtype=np.uint8)
def frame(i):                              # a texture panning 1 px right and 0.5 px down per frame
    y, x = (i // 2) % 64, i % 64
    return np.ascontiguousarray(base[y:y + h, x:x + w])
start = time.perf_counter()
scratch_bytes = 0
if mode == "whole":
    from core.io.frames import frames_to_tensor, tensor_to_frames
    net = model.to(memory_format=torch.channels_last)   # what core.infer did before the engine
    with torch.no_grad():
        out = tensor_to_frames(net(frames_to_tensor(np.stack([frame(i) for i in range(t)]))))
    assert len(out) == t
else:
    from core.stream import StreamRun
    options = dict(scratch=scratch) if mode == "stream" else dict(scratch=scratch, memory_budget=0)
    run = StreamRun(model, (frame(i) for i in range(t)), t, **options)
    n = sum(1 for _ in run)
    assert n == t
    scratch_bytes = run.scratch_bytes
seconds = time.perf_counter() - start
print(json.dumps(dict(seconds=seconds, peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      scratch_mib=scratch_bytes / 2**20)))
"""


def run_child(mode: str, t: int, h: int, w: int, threads: int, scratch: str | None) -> dict:
    code = CHILD.format(root=str(ROOT), args=(mode, t, h, w, threads, scratch))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_rows(specs: list[str]) -> list[tuple[int, int, list[int]]]:
    rows = []
    for spec in specs:
        size, lengths = spec.split(":")
        h, w = (int(v) for v in size.split("x"))
        rows.append((h, w, [int(v) for v in lengths.split(",")]))
    return rows


def _marginals(results: dict, h: int, w: int, mode: str) -> list[tuple[int, int, float, float]]:
    """(short, long, marginal s/frame, peak RSS ratio) between consecutive lengths run in ``mode``."""
    got = sorted(t for (hh, ww, t, m), r in results.items() if (hh, ww, m) == (h, w, mode) and "error" not in r)
    out = []
    for short, long in zip(got, got[1:]):
        rs, rl = results[(h, w, short, mode)], results[(h, w, long, mode)]
        out.append((short, long, (rl["seconds"] - rs["seconds"]) / (long - short), rl["peak_mib"] / rs["peak_mib"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steady timings on a busy machine)")
    ap.add_argument("--rows", nargs="+", default=["64x64:10,50,200,1000", "180x320:4,12"],
                    help="HxW:lengths for each LR size")
    ap.add_argument("--whole-max", type=int, default=200, help="longest clip run whole (memory grows with it)")
    ap.add_argument("--disk-at", type=int, default=200, help="clip length also run with every state on disk")
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds (whole, stream, whole, ...) of every length run in both modes; the "
                         "median time is kept (a longer clip run in one mode only runs once)")
    ap.add_argument("--scratch", default=None, help="scratch folder (default: the system temp folder)")
    a = ap.parse_args()
    table, results = [], {}
    for h, w, lengths in parse_rows(a.rows):
        for t in lengths:
            modes = (["whole"] if t <= a.whole_max else []) + ["stream"] + (["stream-disk"] if t == a.disk_at else [])
            rounds = a.rounds if "whole" in modes else 1
            runs: dict[str, list[dict]] = {mode: [] for mode in modes}
            for _ in range(rounds):
                for mode in modes:
                    r = run_child(mode, t, h, w, a.threads, a.scratch)
                    print(f"# {h}x{w} T={t} {mode}: {r}", file=sys.stderr, flush=True)
                    runs[mode].append(r)
            for mode, rs in runs.items():
                ok = [r for r in rs if "error" not in r]
                if not ok:
                    table.append([f"{h}x{w}", t, mode, "-", "-", "-", "-", rs[0]["error"][:60]])
                    continue
                r = dict(ok[0], seconds=statistics.median(x["seconds"] for x in ok),
                         peak_mib=max(x["peak_mib"] for x in ok))
                results[(h, w, t, mode)] = r
                table.append([f"{h}x{w}", t, mode, r["seconds"] / t, r["peak_mib"], r["scratch_mib"], len(ok), ""])
    print(f"\nLR sizes as given per row; official REDS4 BasicVSR; torch threads {a.threads}; SR frames converted "
          f"to uint8 and dropped; times are medians of interleaved rounds, peak RSS the largest of them\n")
    print_table(["LR size", "frames", "mode", "s/frame", "peak RSS MiB", "scratch disk MiB", "rounds", "note"], table)
    summary, ratios = [], []
    for h, w, _ in parse_rows(a.rows):
        per_mode = {mode: _marginals(results, h, w, mode) for mode in ("whole", "stream", "stream-disk")}
        for mode, rows in per_mode.items():
            summary += [[f"{h}x{w}", mode, f"{s}->{l}", m, ratio] for s, l, m, ratio in rows]
        whole = {(s, l): m for s, l, m, _ in per_mode["whole"]}
        ratios += [[f"{h}x{w}", f"{s}->{l}", whole[(s, l)], m, m / whole[(s, l)]]
                   for s, l, m, _ in per_mode["stream"] if (s, l) in whole]
    if summary:
        print()
        print_table(["LR size", "mode", "frames", "marginal s/frame", "peak RSS ratio long/short"], summary)
    if ratios:
        print("\nspeed goal: streaming marginal s/frame within 1.1x of whole-clip")
        print_table(["LR size", "frames", "whole s/frame", "stream s/frame", "stream / whole"], ratios)


if __name__ == "__main__":
    main()

"""Seconds per frame and peak memory of whole-clip inference (10 LR frames at 180x320 by default).

Each configuration runs in its own child process, so its peak RSS (CPU) or peak CUDA memory is its own, and
the allocator setting of main.py (freed memory retained, core.memory) is compared with glibc's default.
Usage: python bench/bench_infer.py [--frames 10] [--size 180x320] [--repeats 3] [--device cpu cuda]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import ROOT, print_table

CHILD = r"""
import json, resource, sys, time, statistics
sys.path.insert(0, {root!r})
import torch
from core.io.checkpoint import load_checkpoint
from core.io.weights import official_weight
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.memory import retain_freed_memory
variant, frames, h, w, repeats, device, retain = {args!r}
if retain:
    retain_freed_memory()
path = official_weight("REDS4")
if variant == "basicvsr" and path is not None:
    model = load_checkpoint(path).model
else:
    model = BasicVSR(dense_spec(variant)).eval()
model = model.to(device)
if device == "cpu":
    model = model.to(memory_format=torch.channels_last)  # as core.infer.super_resolve runs it
x = torch.rand(1, frames, 3, h, w, device=device)
def once():
    with torch.no_grad():
        model(x)
    if device == "cuda":
        torch.cuda.synchronize()
once()
if device == "cuda":
    torch.cuda.reset_peak_memory_stats()
times = []
for _ in range(repeats):
    t = time.perf_counter(); once(); times.append(time.perf_counter() - t)
peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"median": statistics.median(times), "peak_mib": peak}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", default="180x320")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", nargs="+", default=["cpu"])
    ap.add_argument("--variants", nargs="+", default=["basicvsr", "basicvsr-uni"])
    a = ap.parse_args()
    h, w = (int(v) for v in a.size.split("x"))
    rows = []
    for device in a.device:
        for variant in a.variants:
            for retain in (True, False):
                code = CHILD.format(root=str(ROOT), args=(variant, a.frames, h, w, a.repeats, device, retain))
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append([device, variant, "retained" if retain else "glibc default", a.frames, f"{h}x{w}",
                             r["median"] / a.frames, r["peak_mib"]])
    print(f"whole-clip inference, median of {a.repeats} runs after one warm-up")
    print_table(["device", "model", "freed memory", "frames", "LR size", "s/frame", "peak MiB"], rows)


if __name__ == "__main__":
    main()

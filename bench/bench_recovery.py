"""Quality of pruned networks where a user meets it: on clips never used for calibration or training, beside the
dense network and plain bicubic upscaling.

    python bench/bench_recovery.py [--ratio 0.5] [--criterion l1-mean] [--align 16]
                                   [--clip NAME=FOLDER ...] [--frames 20] [--calib-frames 15]
                                   [--model LABEL=FILE ...] [--threads 2]

For every evaluation clip (a folder holding ``BIx4/`` and ``GT/``; default: Vid4 calendar from ../shared/data)
the rows are: bicubic (OpenCV), the dense REDS4 network, the raw cut at the ratio, the cut reconstructed on the
project's demo clip (``prune``'s default), the cut reconstructed on the clip's own LR frames (its first
``--calib-frames``, no GT: a user pruning for their own video), and any extra model files (``--model``: a trained
``pruned.pth``, or an exported ``.onnx``, streamed as ``sr`` runs it). Y-PSNR/SSIM vs GT over the first
``--frames`` frames, crop 0; "CPU s" is the process CPU time the reconstruction took. Ground truth is never read by
a reconstruction.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from common import SHARED, print_table  # noqa: E402  (puts the repo on sys.path)

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
from core.ssl import compute_scores, prune_to_plan  # noqa: E402
from core.ssl.plan import plan_with  # noqa: E402
from core.ssl.settings import PlanSettings  # noqa: E402


def cpu_flags() -> str:
    """The SIMD flags that decide conv speed on this CPU (AVX2 / AVX-512 / VNNI / BF16)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return " ".join(f for f in wanted if f in flags) or "no AVX2"


def _bicubic(clip: Path, frames: int) -> tuple[float, float]:
    lr = list(open_source(clip / "BIx4", max_frames=frames))
    gt = list(open_source(clip / "GT", max_frames=frames))
    up = [cv2.resize(l, (g.shape[1], g.shape[0]), interpolation=cv2.INTER_CUBIC) for l, g in zip(lr, gt)]
    return (float(np.mean([psnr(u, g, test_y_channel=True) for u, g in zip(up, gt)])),
            float(np.mean([ssim(u, g, test_y_channel=True) for u, g in zip(up, gt)])))


def _score(network, clip: Path, frames: int) -> tuple[float, float]:
    report = evaluate_dataset(network, clip / "BIx4", clip / "GT", y=True, crop_border=0, max_frames=frames)
    return report.mean.psnr, report.mean.ssim


def _reconstructed(dense, cut, plan, calib: Path, settings: ReconstructSettings):
    started = time.process_time()
    model, report = reconstruct(dense, cut, plan, read_calibration(calib, settings.frames_to_read), settings,
                                calib_name=calib.name)
    return model, time.process_time() - started, report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ratio", type=float, default=0.5)
    p.add_argument("--criterion", default="l1-mean")
    p.add_argument("--align", type=int, default=16)
    p.add_argument("--clip", action="append", default=[], metavar="NAME=FOLDER",
                   help="evaluation clip with BIx4/ and GT/ (repeatable; default Vid4 calendar)")
    p.add_argument("--frames", type=int, default=20, help="frames scored per clip")
    p.add_argument("--calib-frames", type=int, default=15)
    p.add_argument("--model", action="append", default=[], metavar="LABEL=FILE",
                   help="an extra model file (.pth or our .onnx) to score on every clip")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clips = [tuple(c.split("=", 1)) for c in args.clip] or [("calendar", str(SHARED / "data/vid4/calendar"))]
    settings = ReconstructSettings(max_frames=args.calib_frames)

    dense = load_checkpoint(official_weight("REDS4")).model.eval()
    plan = plan_with(compute_scores(dense, args.criterion), PlanSettings(args.ratio, args.criterion, 1, args.align),
                     (144, 180))
    cut = prune_to_plan(dense, plan).eval()
    demo_model, demo_cpu, demo_report = _reconstructed(dense, cut, plan, demo_clip_dir() / "BIx4", settings)
    extras = [(label, load_network(path)) for label, path in (m.split("=", 1) for m in args.model)]

    rows = []
    for name, folder in clips:
        clip = Path(folder)
        own_model, own_cpu, own_report = _reconstructed(dense, cut, plan, clip / "BIx4", settings)
        bic = _bicubic(clip, args.frames)
        dense_score = _score(dense, clip, args.frames)
        entries = [("bicubic (OpenCV)", "-", bic, 0.0), ("dense REDS4", "-", dense_score, 0.0),
                   ("raw cut", "-", _score(cut, clip, args.frames), 0.0),
                   ("+ reconstruction", "demo clip", _score(demo_model, clip, args.frames), demo_cpu),
                   ("+ reconstruction", f"{name} (own LR)", _score(own_model, clip, args.frames), own_cpu)]
        entries += [(label, "-", _score(net, clip, args.frames), 0.0) for label, net in extras]
        for label, calib, (ps, ss), cpu in entries:
            rows.append([name, label, calib, f"{ps:.2f}", f"{ss:.4f}", f"{dense_score[0] - ps:+.2f}",
                         f"{ps - bic[0]:+.2f}", f"{cpu:.0f}"])
        print(f"{name}: own-clip reconstruction {own_report.summary()}", flush=True)
    print(f"demo-clip reconstruction: {demo_report.summary()}")
    print(f"ratio {args.ratio}, criterion {args.criterion}, align {args.align}: {plan.after.params:,} parameters "
          f"(dense {plan.before.params:,}), {plan.mac_ratio:.2f}x fewer MACs; Y channel, crop 0, first {args.frames} "
          f"frames; torch {torch.__version__}, {args.threads} thread(s), CPU flags: {cpu_flags()}")
    print_table(["clip", "model", "calibrated on", "Y-PSNR", "Y-SSIM", "drop vs dense", "gain vs bicubic", "CPU s"],
                rows)


if __name__ == "__main__":
    main()

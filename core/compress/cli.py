"""The ``compress`` sub-command: parse, run the recipe with progress on stderr, print the outcome."""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..cli_args import size_arg
from ..events import Log, Progress
from ..plan_args import target_arg
from ..threads import add_threads_option


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):         # NaN and infinities too: inf asks for no finite speed
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_compress_command(sub: Any) -> None:
    """Register ``compress``."""
    help_ = ("from a checkpoint and your footage to one verified int8 ONNX file at a speed: plan for this machine, "
             "cut, reconstruct on your frames, quantize, time it, judge it on frames it never read; a report beside it")
    sp = sub.add_parser("compress", help=help_, description=help_)
    sp.set_defaults(func=cmd_compress)
    sp.add_argument("checkpoint", help="the network to compress (BasicVSR, e.g. the official REDS4 weights)")
    sp.add_argument("--footage", nargs="+", required=True, metavar="CLIP",
                    help="LR footage (videos or frame folders, no GT): the first clip's first --calib-frames frames "
                         "calibrate, its next --judge-frames frames and every further clip are judged only")
    how = sp.add_mutually_exclusive_group(required=True)
    how.add_argument("--speedup", type=_positive, metavar="S",
                     help="run S times faster than the dense network (PyTorch fp32) on this machine")
    how.add_argument("--target-ms", type=target_arg, metavar="X",
                     help="run at X ms per frame at --size (which it needs)")
    sp.add_argument("--size", type=size_arg, default=None, metavar="HxW",
                    help="LR frame size the speed is planned and timed at (default with --speedup: the footage's; "
                         "--target-ms needs it, the size its time is for)")
    sp.add_argument("--out", required=True, metavar="FILE.onnx",
                    help="the ONNX file to write; FILE.report.json and FILE.report.png are written beside it")
    sp.add_argument("--minutes", type=_positive, default=7.0, metavar="M",
                    help="wall-clock minutes the command may take (default 7, about 15 CPU-minutes on 2 cores): "
                         "what planning, cutting, quantizing and judging leave goes to distillation")
    sp.add_argument("--pth", default=None, metavar="FILE.pth", help="also write the float pruned network")
    sp.add_argument("--calib-frames", type=_count, default=10, metavar="N",
                    help="frames at the start of the first clip that calibrate (default 10)")
    sp.add_argument("--judge-frames", type=_count, default=10, metavar="N",
                    help="frames after them (and of each further clip) that judge the file (default 10)")
    sp.add_argument("--max-drop", type=float, default=0.3,
                    help="Y-PSNR drop (dB) the int8 guard may let quantization cost (default 0.3)")
    sp.add_argument("--keep-candidates", default=None, metavar="DIR",
                    help="keep every candidate built (int8 .onnx and float .pth) in this new folder")
    add_threads_option(sp)
    sp.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    sp.add_argument("--json", action="store_true", help="print the report as JSON on stdout")


def _sink(quiet: bool):
    from ..progress_bar import ProgressBar

    bars: dict[str, ProgressBar] = {}

    def sink(event) -> None:
        if isinstance(event, Log):
            for bar in bars.values():
                bar.close()
            bars.clear()
            print(f"compress: {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, Progress) and not quiet:
            bar = bars.setdefault(event.stage, ProgressBar(f"compress: {event.stage}"))
            bar(event.iteration, event.total)

    return sink


def check_compress_memory(args: argparse.Namespace) -> None:
    """Refuse, before any work, a --size or footage the network cannot run at in this machine's memory (the dense
    network runs at --size to time it, and on the footage's frames to score, calibrate and judge)."""
    from ..errors import UserError
    from ..io.checkpoint import load_checkpoint
    from ..io.source import open_source
    from ..memory import check_network_memory

    sizes = [] if args.size is None else [(tuple(args.size), f"--size {args.size[0]}x{args.size[1]}")]
    for path in args.footage:
        try:
            sizes.append((tuple(open_source(path, max_frames=1).size), f"footage {path}"))   # headers only
        except UserError:
            pass                                  # refused by compress itself, in its own words
    try:
        num_feat = load_checkpoint(args.checkpoint).spec.num_feat if sizes else 0
    except UserError:
        return                                    # the same: compress refuses the checkpoint in its own words
    for size, what in sizes:
        check_network_memory(size, num_feat, what)


def cmd_compress(args: argparse.Namespace) -> int:
    from .run import CompressRequest, compress

    check_compress_memory(args)

    req = CompressRequest(model=args.checkpoint, footage=tuple(args.footage), out=args.out, speedup=args.speedup,
                          target_ms=args.target_ms, size=args.size, pth=args.pth, minutes=args.minutes, calib_frames=args.calib_frames,
                          judge_frames=args.judge_frames, max_drop=args.max_drop, overwrite=args.overwrite,
                          keep=args.keep_candidates)
    result = compress(req, _sink(args.json))
    print(json.dumps(result.report, indent=2) if args.json else result.summary())
    return 0

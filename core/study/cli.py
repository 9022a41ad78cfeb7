"""The ``study`` sub-command: sensitivity of each layer group and ratio sweeps, as tables or JSON.

    python main.py study sensitivity CKPT --lr DIR [--gt DIR] [--ratio 0.5] [--granularity block|segment|layer]
                                          [--max-frames N|all] [--lr-crop HxW|full] [--json] [--out FILE]
    python main.py study sweep CKPT --lr DIR [--gt DIR] [--ratios 0.3,0.5,0.7] [--align 16]
                                    [--train-gt DIR [--train-lr DIR] --sir-iters N --finetune-iters N]
                                    [--max-frames N|all] [--lr-crop HxW|full] [--json] [--out FILE]

Quick by default, so a first study on a CPU takes minutes: sensitivity runs every layer group over the first
4 frames and a centre 48x64 (height x width) crop of the LR frames, a sweep over the first 8 whole frames (its
ms/frame depend on the frame size). --max-frames all and --lr-crop full study the whole clip.
Without --gt the clip's PSNR is measured against the dense model's output (said on stderr and in the result).
Progress goes to stderr: a bar on a terminal, a plain line every few percent otherwise.
Ctrl-C stops at the next frame; nothing is written then.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from ..cli_args import parse_size
from ..errors import UserError
from ..events import Event, Log, Progress, RunControl
from ..io.limits import MAX_SIDE
from ..io.missing import why_missing
from ..ssl import CRITERIA, DEFAULT_CRITERION
from ..threads import add_threads_option

# Defaults that keep a first study on a 2-core CPU to a few minutes (sensitivity over the whole demo clip, every
# block: 743 CPU-seconds in a tester's run, with no progress shown in a log).
QUICK = {"sensitivity": (4, (48, 64)), "sweep": (8, None)}       # kind: (frames, LR centre crop HxW or None)


def _frames_arg(text: str) -> int:
    """--max-frames: a count of at least 2, or 'all' (0)."""
    if text.strip().lower() in ("all", "0"):
        return 0
    try:
        n = int(text)
        if n < 2:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-frames must be a number of at least 2, or 'all'; got {text!r}") \
            from None
    return n


def _crop_arg(text: str) -> tuple[int, int] | None:
    """--lr-crop: HxW (height x width, LR pixels), or 'full' (no crop)."""
    if text.strip().lower() in ("full", "none"):
        return None
    try:
        return parse_size(text, lowest=8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr-crop must look like 48x64 (height x width, each 8..{MAX_SIDE}) "
                                         f"or 'full'; got {text!r}") from None

def add_study_commands(subparsers: Any) -> None:
    """Register ``study sensitivity`` and ``study sweep``; the handlers are stored as ``func``."""
    p = subparsers.add_parser("study", help="sensitivity of each layer group, and ratio sweeps (Pareto front)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="study", metavar="STUDY")
    p.set_defaults(func=lambda args: _missing(p))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("checkpoint")
    common.add_argument("--lr", required=True, help="LR frames of the clip (a folder of frames or a video)")
    common.add_argument("--gt", help="its ground truth; without it PSNR is measured against the dense output")
    common.add_argument("--criterion", default=DEFAULT_CRITERION, help=f"unit score ({', '.join(CRITERIA)})")
    common.add_argument("--max-frames", type=_frames_arg, default=None, metavar="N|all",
                        help="use the first N frames of the clip; 'all' for every frame (default: sensitivity "
                             f"{QUICK['sensitivity'][0]}, sweep {QUICK['sweep'][0]})")
    common.add_argument("--lr-crop", type=_crop_arg, default=False, metavar="HxW|full",
                        help="study a centre crop of the LR frames, height x width (the GT is cropped to match); "
                             "'full' for whole frames (default: sensitivity 48x64, sweep full)")
    common.add_argument("--rgb", action="store_true", help="PSNR on RGB instead of the Y channel")
    common.add_argument("--device", default="auto", help="auto, cpu or cuda")
    add_threads_option(common)
    common.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    common.add_argument("--out", help="also save the result as a study file (reopen it in the app's Study step)")
    common.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    s = sub.add_parser("sensitivity", parents=[common], help="prune each layer group alone; PSNR drop per group")
    s.add_argument("--ratio", default="0.5", help="fraction of each group's units to prune (default 0.5)")
    s.add_argument("--granularity", default="block",
                   help="block (a residual block's layers together), segment (5 blocks together) or layer")
    s.set_defaults(func=sensitivity_command)

    w = sub.add_parser("sweep", parents=[common], help="PSNR, parameters, MACs and ms/frame per global ratio")
    w.add_argument("--ratios", default="0.3,0.5,0.7", help="comma-separated global ratios (default 0.3,0.5,0.7)")
    w.add_argument("--align", type=int, default=None, help="round kept widths to a multiple (default 16)")
    w.add_argument("--train-gt", help="train each ratio briefly (SIR + finetune) on these GT frames first")
    w.add_argument("--train-lr", help="LR frames for --train-gt (default: bicubic x4 made on the fly)")
    w.add_argument("--sir-iters", type=int, default=40, help="SIR iterations per ratio with --train-gt")
    w.add_argument("--finetune-iters", type=int, default=60, help="finetune iterations per ratio with --train-gt")
    w.set_defaults(func=sweep_command)

def _missing(p: argparse.ArgumentParser) -> int:
    raise UserError("study needs a kind: study sensitivity CKPT --lr DIR, or study sweep CKPT --lr DIR")

# -- shared ----------------------------------------------------------------------------------------------------
def _prepare(args: argparse.Namespace):
    """Check everything cheap first (paths, output, criterion), then load the model and the clip."""
    from ..device import resolve_device
    from ..io.checkpoint import load_checkpoint
    from ..ssl.criteria import get_criterion
    from .clip import load_study_clip

    get_criterion(args.criterion)
    for option, value, thing in (("checkpoint", args.checkpoint, "checkpoint"), ("--lr", args.lr, "clip"),
                                 ("--gt", args.gt, "clip")):
        missing = None if value is None else why_missing(value, thing)
        if missing is not None:
            raise UserError(f"{option} {value}: {missing}")
    device = resolve_device(args.device)
    loaded = load_checkpoint(args.checkpoint)
    if loaded.is_pruned:
        raise UserError(f"{args.checkpoint} is already pruned: a study starts from a dense checkpoint")
    quick_frames, quick_crop = QUICK[args.study]
    frames = quick_frames if args.max_frames is None else args.max_frames or None
    crop = quick_crop if args.lr_crop is False else args.lr_crop
    clip = load_study_clip(args.lr, args.gt, frames, crop)
    from ..memory import check_network_memory

    check_network_memory(tuple(clip.lr.shape[1:3]), loaded.spec.num_feat, f"--lr {args.lr}", device)  # before any run
    quick = [f"the first {len(clip.lr)} frames" if args.max_frames is None and len(clip.lr) == frames else "",
             clip.notes[0] if args.lr_crop is False and clip.notes else ""]
    if any(quick):
        sys.stderr.write(f"note: quick defaults: {', '.join(q for q in quick if q)}; "
                         f"--max-frames all --lr-crop full study the whole clip\n")
    if clip.gt is None:
        sys.stderr.write("note: no --gt given: PSNR is measured against the dense model's output "
                         "(how far pruning moves it), not against ground truth\n")
    return loaded, clip, device

class _Bar:
    """Progress events → one redrawn line on a terminal; Log events as lines above it."""

    def __init__(self, label: str, quiet: bool) -> None:
        from ..progress_bar import ProgressBar

        self.bar = ProgressBar(label, enabled=False if quiet else None)

    def __call__(self, e: Event) -> None:
        if isinstance(e, Progress):
            psnr = e.losses.get("psnr")
            self.bar(e.iteration, e.total, "" if psnr is None else f"last {psnr:.2f} dB")
        elif isinstance(e, Log) and e.level != "info":
            self.bar.close()
            sys.stderr.write(f"{e.level}: {e.message}\n")

    def close(self) -> None:
        self.bar.close()

def _holding_out(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a study command with its ``--out`` claimed and locked from the start to the written result: a second
    study into the same file is refused at once, not after both computed."""
    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from ..io.output import held_output

        if not args.out:
            return command(args)
        with held_output(args.out, inputs=[args.checkpoint, args.lr, args.gt], overwrite=args.overwrite):
            return command(args)
    return run


def _run(args: argparse.Namespace, label: str, work) -> Any:
    control = RunControl()
    sink = _Bar(label, args.json)
    previous = signal.signal(signal.SIGINT, lambda *_: control.cancel()) if _main_thread() else None
    from ..events import Cancelled

    try:
        return work(sink, control)
    except Cancelled:
        raise UserError("study cancelled; nothing written") from None
    finally:
        sink.close()
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()

def _finish(args: argparse.Namespace, result, text: str) -> int:
    from .results import save_study, to_json

    if args.out:
        written = save_study(result, args.out, overwrite=args.overwrite,
                             inputs=[Path(p) for p in (args.checkpoint, args.lr, args.gt) if p])
        sys.stderr.write(f"saved {written}\n")
    print(json.dumps(to_json(result), indent=2) if args.json else text)
    return 0

def _db(v: float | None) -> str:
    if v is None:
        return "–"
    return "identical" if math.isinf(v) else f"{v:.3f}"

# -- sensitivity -----------------------------------------------------------------------------------------------
@_holding_out
def sensitivity_command(args: argparse.Namespace) -> int:
    from .sensitivity import GRANULARITIES, check_ratio, run_sensitivity

    ratio = _float(args.ratio, "--ratio")
    check_ratio(ratio)
    if args.granularity not in GRANULARITIES:
        raise UserError(f"unknown --granularity {args.granularity!r} (use one of: {', '.join(GRANULARITIES)})")
    loaded, clip, device = _prepare(args)
    result = _run(args, "sensitivity", lambda sink, control: run_sensitivity(
        loaded.model, clip, ratio=ratio, criterion=args.criterion, granularity=args.granularity, device=device,
        y=not args.rgb, checkpoint=str(loaded.path), sink=sink, control=control))
    return _finish(args, result, sensitivity_table(result))

def sensitivity_table(result) -> str:
    """Most sensitive group first, with what pruning it alone saves."""
    c = result.clip
    head = f"{'group':<14}{'pruned':>12}{'params saved':>14}{'MACs saved':>12}{'PSNR':>10}"
    head += f"{'drop':>9}" if c.has_gt else ""
    rows = [f"sensitivity of {result.checkpoint} on {c.name} ({c.frames} frames, LR HxW {c.lr_size[0]}x{c.lr_size[1]}, "
            f"{c.channel}, against {c.reference}); each group pruned alone at {result.ratio:g} by {result.criterion}",
            head]
    for g in result.ranked():
        rows.append(f"{g.name:<14}{g.units_pruned:>6}/{g.units_total:<5}{g.params_saved:>14,}"
                    f"{g.macs_saved / 1e9:>11.2f}G{_db(g.psnr):>10}" + (f"{_db(g.drop):>9}" if c.has_gt else ""))
    if result.dense_psnr is not None:
        rows.append(f"dense PSNR {result.dense_psnr:.3f} dB")
    rows += [f"note: {n}" for n in result.notes]
    rows.append(f"({result.seconds:.0f} s)")
    return "\n".join(rows)

# -- sweep -------------------------------------------------------------------------------------------------------
@_holding_out
def sweep_command(args: argparse.Namespace) -> int:
    from ..ssl.plan import RECOMMENDED_ALIGN
    from .sweep import parse_ratios, run_sweep
    from .training import Budget, as_path

    ratios = parse_ratios(args.ratios)
    align = RECOMMENDED_ALIGN if args.align is None else args.align
    if not 1 <= align <= 64:
        raise UserError(f"--align must be between 1 and 64, got {align}")
    budget = None
    if args.train_lr and not args.train_gt:
        raise UserError("--train-lr needs --train-gt (the frames to train on)")
    if args.train_gt:
        for flag, value in (("--sir-iters", args.sir_iters), ("--finetune-iters", args.finetune_iters)):
            if not 1 <= value <= 1_000_000:
                raise UserError(f"{flag} must be between 1 and 1000000, got {value}")
        for flag, value in (("--train-gt", args.train_gt), ("--train-lr", args.train_lr)):
            if value and not Path(value).is_dir():
                raise UserError(f"{flag} {value}: {why_missing(value, 'folder') or 'not a folder'}")
        budget = Budget(as_path(args.train_gt), as_path(args.train_lr), args.sir_iters, args.finetune_iters)
    loaded, clip, device = _prepare(args)
    result = _run(args, "sweep", lambda sink, control: run_sweep(
        loaded.model, clip, ratios=ratios, criterion=args.criterion, align=align, device=device, y=not args.rgb,
        checkpoint=str(loaded.path), budget=budget, sink=sink, control=control))
    return _finish(args, result, sweep_table(result))

def sweep_table(result) -> str:
    """One row per network; '*' marks the Pareto front on MACs."""
    c = result.clip
    front = {p.label for p in result.front("macs")}
    rows = [f"sweep of {result.checkpoint} on {c.name} ({c.frames} frames, LR HxW {c.lr_size[0]}x{c.lr_size[1]}, "
            f"{c.channel} PSNR against {c.reference}); criterion {result.criterion}, widths multiple of "
            f"{result.align}; {result.device}",
            f"{'network':<14}{'ratio':>7}{'params':>11}{'GMAC/frame':>12}{'ms/frame':>10}{'PSNR':>10}  front"]
    for p in result.points:
        rows.append(f"{p.label:<14}{p.achieved_ratio:>7.3f}{p.params:>11,}{p.macs / 1e9:>12.2f}"
                    f"{p.ms_per_frame:>10.0f}{_db(p.psnr):>10}  {'*' if p.label in front else ''}")
    if result.training:
        t = result.training
        rows.append(f"trained per ratio: {t['sir_iterations_run']} SIR + {t['finetune_iterations_run']} finetune "
                    f"iterations on {t['train_gt']} (patch {t['patch_size']}, {t['clip_length']} frames)")
    rows += [f"note: {n}" for n in result.notes]
    rows.append(f"MACs without SpyNet (SpyNet adds {result.dense.macs_spynet / 1e9:.2f} G per frame); "
                f"ms/frame measured over the whole clip ({result.seconds:.0f} s in all)")
    return "\n".join(rows)

def _float(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise UserError(f"{flag} {text!r} is not a number (e.g. {flag} 0.5)") from None

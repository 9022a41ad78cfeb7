"""Headless command line: info, sr, eval, plan, prune, export (and train, from core.train).

Every bad input ends as one line on stderr and exit code 2; ``--json`` prints machine-readable results on
stdout for scripts.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import UserError
from .ssl.plan import RECOMMENDED_ALIGN

EXIT_USER_ERROR = 2


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        if h < 1 or w < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 180x320 (height x width), got {text!r}") from None
    return h, w


def _ratio(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"ratio must be a number in [0, 1), got {text!r}") from None


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)


def _fmt_int(n: int) -> str:
    return f"{n:,}"


# -- commands ------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from .io.checkpoint import load_checkpoint
    from .profile.macs import frame_macs

    loaded = load_checkpoint(args.checkpoint)
    m, spec = loaded.model, loaded.spec
    macs, spy = frame_macs(spec, *args.size)
    data = {"path": str(loaded.path), "format": loaded.source_format, "variant": spec.variant,
            "pruned": loaded.is_pruned, "channels": spec.num_feat, "blocks": spec.num_block,
            "params": m.count_parameters(include_spynet=False), "params_with_spynet": m.count_parameters(True),
            "frame_size": list(args.size), "macs_per_frame": macs, "macs_per_frame_spynet": spy,
            "meta": {k: v for k, v in loaded.meta.items() if k != "plan"}}
    text = "\n".join([
        f"checkpoint   {loaded.path} ({loaded.source_format})",
        f"variant      {spec.variant}{' (pruned)' if loaded.is_pruned else ''}",
        f"channels     {spec.num_feat}    residual blocks per trunk: {spec.num_block}",
        f"parameters   {_fmt_int(data['params'])} without SpyNet, {_fmt_int(data['params_with_spynet'])} with",
        f"MACs/frame   {macs / 1e9:.2f} G without SpyNet, {(macs + spy) / 1e9:.2f} G with "
        f"(LR {args.size[0]}x{args.size[1]})"])
    _emit(args, data, text)
    return 0


def _progress(label: str, quiet: bool) -> "Callable[[int, int], None]":
    from .progress_bar import ProgressBar

    return ProgressBar(label, enabled=False if quiet else None)


def cmd_sr(args: argparse.Namespace) -> int:
    from .device import resolve_device
    from .infer import super_resolve
    from .io.checkpoint import load_checkpoint
    from .io.frames import VIDEO_EXTS, read_clip, write_frames, write_video

    device = resolve_device(args.device)
    loaded = load_checkpoint(args.checkpoint)
    clip = read_clip(args.input, max_frames=args.max_frames)
    bar = _progress(f"sr {clip.name}", args.json)
    result = super_resolve(loaded.model, clip.frames, device, progress=bar)
    bar.close()
    out = Path(args.output)
    if out.suffix.lower() in VIDEO_EXTS:
        write_video(result.frames, out, fps=clip.fps or 25)
    else:
        write_frames(result.frames, out, names=clip.names)
    data = {"output": str(out), "frames": len(result.frames), "size": list(result.frames.shape[1:3]),
            "seconds": result.seconds, "seconds_per_frame": result.seconds_per_frame, "device": str(device)}
    _emit(args, data, f"wrote {len(result.frames)} frames of {result.frames.shape[2]}x{result.frames.shape[1]} "
                      f"to {out} ({result.seconds_per_frame:.3f} s/frame on {device})")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .device import resolve_device
    from .evaluate import evaluate_dataset
    from .io.checkpoint import load_checkpoint

    device = resolve_device(args.device)
    loaded = load_checkpoint(args.checkpoint)
    bar = _progress("eval", args.json)
    report = evaluate_dataset(loaded.model, args.lr, args.gt, device=device, y=args.y, crop_border=args.crop,
                              max_frames=args.max_frames, progress=bar)
    bar.close()
    channel = "Y" if args.y else "RGB"
    rows = [f"{'clip':<16}{'frames':>7}{'PSNR':>11}{'SSIM':>9}"]
    rows += [f"{c.name:<16}{len(c.psnr):>7}{c.mean_psnr:>11.4f}{c.mean_ssim:>9.4f}" for c in report.clips]
    rows.append(f"{'mean':<16}{'':>7}{report.mean.psnr:>11.4f}{report.mean.ssim:>9.4f}"
                f"   ({channel}, crop {args.crop}, mean over frames then clips)")
    data = {"channel": channel, "crop_border": args.crop, "mean_psnr": report.mean.psnr,
            "mean_ssim": report.mean.ssim,
            "clips": [{"name": c.name, "psnr": c.mean_psnr, "ssim": c.mean_ssim, "frames_psnr": c.psnr,
                       "frames_ssim": c.ssim} for c in report.clips]}
    _emit(args, data, "\n".join(rows))
    return 0


def _load_for_plan(args: argparse.Namespace):
    from .io.checkpoint import load_checkpoint
    from .ssl import compute_scores, make_plan

    loaded = load_checkpoint(args.checkpoint)
    scores = compute_scores(loaded.model, args.criterion)
    plan = make_plan(scores, args.ratio, min_keep=args.min_keep, align=args.align, frame_size=tuple(args.size))
    return loaded, plan


def plan_table(plan) -> str:
    """Per-layer table and totals, as the ``plan`` command prints them."""
    rows = [f"{'layer':<18}{'kind':<12}{'kept':>6}{'total':>7}{'ratio':>8}"]
    for l in plan.layers:
        rows.append(f"{l.name:<18}{l.kind:<12}{l.n_kept:>6}{l.total:>7}{l.ratio:>8.2f}{'  *' if l.limited else ''}")
    b, a = plan.before, plan.after
    rows += ["",
             f"units pruned      {plan.units_pruned}/{plan.units_total} "
             f"(asked {plan.requested_ratio:.3f}, got {plan.achieved_ratio:.3f}; criterion {plan.criterion})",
             f"parameters        {_fmt_int(b.params)} -> {_fmt_int(a.params)} without SpyNet "
             f"({b.params / a.params:.2f}x fewer)",
             f"MACs per frame    {b.macs / 1e9:.2f} G -> {a.macs / 1e9:.2f} G without SpyNet at "
             f"{plan.frame_size[0]}x{plan.frame_size[1]} ({plan.mac_ratio:.2f}x fewer)"]
    rows += [f"note: {n}" for n in plan.notes]
    if any(l.limited for l in plan.layers):
        rows.append("* a floor, lock or cap kept more units in this layer than the global ranking asked for")
    return "\n".join(rows)


def cmd_plan(args: argparse.Namespace) -> int:
    _, plan = _load_for_plan(args)
    _emit(args, plan.to_json(), plan_table(plan))
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from .ssl import prune_to_plan
    from .ssl.export import export_model_file

    loaded, plan = _load_for_plan(args)
    pruned = prune_to_plan(loaded.model, plan)
    meta = {"source": str(loaded.path), "source_format": loaded.source_format, "ratio": args.ratio,
            "achieved_ratio": plan.achieved_ratio, "criterion": args.criterion, "align": args.align,
            "min_keep": args.min_keep, "training": "none (zero-shot)", "plan": plan.to_json(scores=True)}
    check = export_model_file(pruned, args.out, meta)
    data = {"output": str(args.out), "verified": check.ok, "params": plan.after.params, "macs_per_frame": plan.after.macs,
            "params_before": plan.before.params, "macs_before": plan.before.macs, "mac_ratio": plan.mac_ratio}
    _emit(args, data, f"wrote {args.out}: {_fmt_int(plan.before.params)} -> {_fmt_int(plan.after.params)} "
                      f"parameters, {plan.mac_ratio:.2f}x fewer MACs per frame")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .io.checkpoint import load_checkpoint
    from .ssl.export import export_as

    loaded = load_checkpoint(args.model)
    h, w = args.size
    check = export_as(args.format, loaded.model, args.out, frames=args.frames, height=h, width=w, meta=loaded.meta)
    _emit(args, {"output": str(check.path), "format": check.format, "max_abs_diff": check.max_abs_diff,
                 "verified": check.ok}, check.summary())
    return 0 if check.ok else 1


# -- parser --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ssl-vsr", description="Structured Sparsity Learning for BasicVSR: "
                                "inspect, prune, evaluate and export video super-resolution models. "
                                "Run with no command to open the desktop app.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        return sp

    def device(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")

    def json_flag(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    sub.add_parser("gui", help="open the desktop app (the default when no command is given)")

    sp = add("info", cmd_info, "describe a checkpoint: variant, widths, parameters, MACs per frame")
    sp.add_argument("checkpoint")
    sp.add_argument("--size", type=_size, default=(180, 320), help="LR frame size for MACs (default 180x320)")
    json_flag(sp)

    sp = add("sr", cmd_sr, "super-resolve a clip (frame folder or video) to a frame folder or video")
    sp.add_argument("checkpoint")
    sp.add_argument("input", help="folder of frames or a video file")
    sp.add_argument("output", help="output folder for frames, or a .mp4/.avi file")
    sp.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")
    device(sp)
    json_flag(sp)

    sp = add("eval", cmd_eval, "PSNR/SSIM per clip and mean, computed as BasicSR does")
    sp.add_argument("checkpoint")
    sp.add_argument("--lr", required=True, help="LR frames: one clip folder or a folder of clip folders")
    sp.add_argument("--gt", required=True, help="ground truth, laid out like --lr")
    sp.add_argument("--y", action="store_true", help="measure on the Y channel (BT.601) instead of RGB")
    sp.add_argument("--crop", type=int, default=0, help="pixels cropped from each border before measuring")
    sp.add_argument("--max-frames", type=int, default=None, help="use at most this many frames per clip")
    device(sp)
    json_flag(sp)

    for name, fn, help_ in (("plan", cmd_plan, "show how a global pruning ratio falls on every layer"),
                            ("prune", cmd_prune, "prune physically (no training) and write a model file")):
        sp = add(name, fn, help_)
        sp.add_argument("checkpoint")
        sp.add_argument("--ratio", type=_ratio, required=True, help="global pruning ratio in [0, 1)")
        sp.add_argument("--criterion", choices=("l1", "scale"), default="l1",
                        help="l1: filter L1 norm (stock weights); scale: |gamma| after SIR")
        sp.add_argument("--min-keep", type=int, default=1, help="units every layer keeps at least")
        sp.add_argument("--align", type=int, default=RECOMMENDED_ALIGN,
                        help=f"round each layer's kept count to a multiple (default {RECOMMENDED_ALIGN}: narrow odd "
                             f"widths run slowly; 1 = the paper's exact global cut)")
        sp.add_argument("--size", type=_size, default=(180, 320), help="LR frame size for MACs")
        if name == "prune":
            sp.add_argument("--out", required=True, help="pruned model file to write")
        json_flag(sp)

    sp = add("export", cmd_export, "export a model file to TorchScript, ONNX or an HDF5 report, verified")
    sp.add_argument("model")
    sp.add_argument("--format", choices=("torchscript", "onnx", "h5"), required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--frames", type=int, default=5, help="clip length the export is traced for")
    sp.add_argument("--size", type=_size, default=(64, 64), help="LR frame size the export is traced for")
    json_flag(sp)

    try:
        from .train.cli import add_train_commands
    except ImportError:
        pass
    else:
        add_train_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.simplefilter("default")
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

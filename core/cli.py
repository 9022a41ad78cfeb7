"""Headless command line: info, sr, eval, plan, prune, export (train, study and compress from their packages).

Every bad input ends as one line on stderr and exit code 2; ``--json`` prints machine-readable results on
stdout for scripts.
"""
from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
import threading
import warnings
from typing import Callable, NoReturn, Sequence

from .cli_args import at_least, emit, fmt_int, progress_bar, size_arg, threads_note
from .errors import UserError
from .interrupt import interrupt_normally
from .models.spynet import FLOW_RESOLUTIONS
from .plan_args import add_plan_arguments
from .run_cli import cmd_eval, cmd_sr, warn_if_unrecovered
from .threads import add_threads_option, compute_threads, set_threads

EXIT_USER_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse whose refusals are one-line UserErrors (``error: ...``, exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{self.prog}: {message} (see {self.prog} --help)")


# -- commands ------------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from .io.checkpoint import load_checkpoint
    from .profile.macs import frame_macs
    from .ssl.plan import stored_plan
    from .ssl.units import layer_widths

    loaded = load_checkpoint(args.checkpoint, allow_nonfinite=args.allow_nonfinite)
    m, spec = loaded.model, loaded.spec
    plan = stored_plan(loaded.meta, loaded.path)
    macs, spy = frame_macs(spec, *args.size)
    data = {"path": str(loaded.path), "format": loaded.source_format, "variant": spec.variant,
            "pruned": loaded.is_pruned, "channels": spec.num_feat, "blocks": spec.num_block,
            "params": m.count_parameters(include_spynet=False), "params_with_spynet": m.count_parameters(True),
            "frame_size": list(args.size), "macs_per_frame": macs, "macs_per_frame_spynet": spy,
            "meta": {k: v for k, v in loaded.meta.items() if k != "plan"}, "layers": layer_widths(spec),
            "plan_settings": None if plan is None or plan.settings is None else plan.settings.to_json()}
    text = "\n".join([
        f"checkpoint   {loaded.path} ({loaded.source_format})",
        f"variant      {spec.variant}{' (pruned)' if loaded.is_pruned else ''}",
        f"channels     {spec.num_feat}    residual blocks per trunk: {spec.num_block}",
        f"parameters   {fmt_int(data['params'])} without SpyNet, {fmt_int(data['params_with_spynet'])} with",
        f"MACs/frame   {macs / 1e9:.2f} G without SpyNet, {(macs + spy) / 1e9:.2f} G with "
        f"(LR {args.size[0]}x{args.size[1]})"])
    emit(args, data, text)
    return 0


def _calibration_clip(args: argparse.Namespace, needed: bool):
    """(clip path, its frames, the name a model file records) when ``needed`` (checked before any work: one line and
    exit 2 otherwise), or None. The clip is ``--calib``, or the bundled demo clip."""
    from .io.demo import calib_clip_name, demo_clip_dir
    from .data.calib import read_calibration
    from .recover.reconstruct import ReconstructSettings

    if not needed:
        return None
    calib = args.calib or str(demo_clip_dir() / "BIx4")
    return calib, read_calibration(calib, ReconstructSettings().frames_to_read), calib_clip_name(calib)


def _load_for_plan(args: argparse.Namespace, calib=None):
    """The checkpoint and the plan the arguments describe; a criterion measured on frames reads ``calib``'s
    (the frames reconstruction fits on)."""
    from .io.checkpoint import load_checkpoint
    from .plan_args import check_plan_args, plan_from_args
    from .ssl import scores_on

    loaded = load_checkpoint(args.checkpoint, allow_nonfinite=args.allow_nonfinite)
    check_plan_args(args, loaded.model.spec)          # before a criterion measured on frames runs the network
    frames, source = (None, None) if calib is None else calib[1:]
    outcome = plan_from_args(args, scores_on(loaded.model, args.criterion, frames, source))
    return loaded, outcome


def _latency_line(outcome) -> list[str]:
    if outcome.predicted_ms is None:
        return []
    return [f"predicted time    {outcome.predicted_ms:.0f} ms per frame ({1000 / outcome.predicted_ms:.2f} fps) "
            f"for a target of {outcome.target_ms:.0f} ms, from this device's latency table: the network's time "
            f"as `sr` reports it once warm{threads_note(outcome.device)} (its reading and writing come on top)"]


def plan_table(plan) -> str:
    """Per-layer table and totals, as the ``plan`` command prints them."""
    rows = [f"{'layer':<18}{'kind':<12}{'kept':>6}{'total':>7}{'ratio':>8}"]
    for l in plan.layers:
        rows.append(f"{l.name:<18}{l.kind:<12}{l.n_kept:>6}{l.total:>7}{l.ratio:>8.2f}{'  *' if l.limited else ''}")
    b, a = plan.before, plan.after
    rows += ["",
             f"units pruned      {plan.units_pruned}/{plan.units_total} "
             f"(asked {plan.requested_ratio:.3f}, got {plan.achieved_ratio:.3f}; criterion {plan.criterion})",
             f"parameters        {fmt_int(b.params)} -> {fmt_int(a.params)} without SpyNet "
             f"({b.params / a.params:.2f}x fewer)",
             f"MACs per frame    {b.macs / 1e9:.2f} G -> {a.macs / 1e9:.2f} G without SpyNet at "
             f"{plan.frame_size[0]}x{plan.frame_size[1]} ({plan.mac_ratio:.2f}x fewer)"]
    rows += [f"note: {n}" for n in plan.notes]
    if any(l.limited for l in plan.layers):
        rows.append("* a floor, lock or cap kept more units in this layer than the global ranking asked for")
    return "\n".join(rows)


def cmd_plan(args: argparse.Namespace) -> int:
    from .ssl import get_criterion

    needs = get_criterion(args.criterion).needs_frames
    if args.calib is not None and not needs:
        raise UserError(f"--calib is the clip the {args.criterion!r} criterion would be measured on; it measures "
                        f"weights alone (use --criterion contribution, or leave --calib out)")
    _, outcome = _load_for_plan(args, _calibration_clip(args, needs))
    plan = outcome.plan
    data = {**plan.to_json(), "predicted_ms_per_frame": outcome.predicted_ms, "target_ms": outcome.target_ms,
            "threads": compute_threads(outcome.device)}
    emit(args, data, "\n".join([plan_table(plan), *_latency_line(outcome)]))
    return 0


def _event_bar(bar: "Callable[[int, int], None]"):
    """An engine event sink that moves a progress bar on ``Progress`` events."""
    from .events import Progress

    def sink(event) -> None:
        if isinstance(event, Progress):
            bar(event.iteration, event.total)

    return sink


def cmd_prune(args: argparse.Namespace) -> int:
    from .io.output import held_output

    inputs = [args.checkpoint, args.calib]      # --calib too: an --out inside the clip replaced one of its frames
    with held_output(args.out, inputs=inputs, overwrite=args.overwrite):   # the lock before any work
        return _prune(args)


def _prune(args: argparse.Namespace) -> int:
    from .io.checkpoint import ReloadCheck, save_model
    from .io.space import check_room, model_file_bytes
    from .recover.reconstruct import ReconstructSettings, reconstruct
    from .recover.status import RAW_CUT_TRAINING, RECONSTRUCTION_KEY, recovery_status
    from .ssl import get_criterion, prune_to_plan

    settings = ReconstructSettings()
    measured = get_criterion(args.criterion).needs_frames
    if args.no_reconstruct and args.calib is not None and not measured:
        raise UserError("--calib calibrates the reconstruction (and a criterion measured on frames): it cannot go "
                        "with --no-reconstruct and a weight criterion")
    calib = _calibration_clip(args, measured or not args.no_reconstruct)    # checked before any work
    loaded, outcome = _load_for_plan(args, calib)
    plan = outcome.plan
    if plan.units_pruned == 0:          # a copy of the network labelled "pruned" helps nobody
        raise UserError(f"the plan prunes no unit of this network (min-keep {args.min_keep}, align {args.align}): "
                        f"nothing written; raise --ratio (or lower --target-ms), or lower --min-keep or --align")
    pruned = prune_to_plan(loaded.model, plan)
    check_room(args.out, model_file_bytes(pruned))      # a full disk is refused before the reconstruction
    meta = {"source": str(loaded.path), "source_format": loaded.source_format, "ratio": plan.requested_ratio,
            "achieved_ratio": plan.achieved_ratio, "criterion": args.criterion, "align": args.align,
            "min_keep": args.min_keep, "training": RAW_CUT_TRAINING, "plan": plan.to_json(scores=True),
            "predicted_ms_per_frame": outcome.predicted_ms}
    if measured:
        meta["criterion_clip"] = calib[2]
    report = None
    if not args.no_reconstruct:
        bar = progress_bar("reconstruct", args.json)
        pruned, report = reconstruct(loaded.model, pruned, plan, calib[1], settings, calib_name=calib[2],
                                     sink=_event_bar(bar))
        bar.close()
        meta[RECONSTRUCTION_KEY] = report.to_meta()
    save_model(pruned, args.out, meta, overwrite=args.overwrite, inputs=[args.checkpoint, args.calib],
               verify=ReloadCheck(pruned))
    data = {"output": str(args.out), "verified": True, "params": plan.after.params, "macs_per_frame": plan.after.macs,
            "params_before": plan.before.params, "macs_before": plan.before.macs, "mac_ratio": plan.mac_ratio,
            "predicted_ms_per_frame": outcome.predicted_ms,
            "reconstruction": None if report is None else report.to_meta()}
    warn_if_unrecovered(str(args.out), recovery_status(meta, pruned=True))
    emit(args, data, "\n".join([f"wrote {args.out}: {fmt_int(plan.before.params)} -> {fmt_int(plan.after.params)} "
                                 f"parameters, {plan.mac_ratio:.2f}x fewer MACs per frame (reloaded and verified)",
                                 *([report.summary()] if report else []), *_latency_line(outcome)]))
    return 0


def _finite(value: float | None) -> float | None:
    """A number for --json (strict JSON has no Infinity/NaN: an int8 file identical to float has fidelity inf)."""
    return value if value is None or math.isfinite(value) else None


def cmd_export(args: argparse.Namespace) -> int:
    from .deploy.command import export_file

    made: list = []

    def loaded(status) -> None:           # before the export's long work; a report (h5) runs nothing
        made.append(status)
        if args.format == "onnx":
            warn_if_unrecovered(args.model, status)

    check = export_file(args.model, args.format, args.out, precision=args.precision, calib=args.calib,
                        calib_gt=args.calib_gt, max_drop=args.max_drop, overwrite=args.overwrite,
                        allow_nonfinite=args.allow_nonfinite, flow=args.flow, on_loaded=loaded)
    emit(args, {"output": str(check.path), "format": check.format, "precision": check.precision,
                 "max_abs_diff": check.max_abs_diff, "shapes_verified": [list(s) for s in check.shapes],
                 "flow": check.flow, "psnr_drop_db": check.psnr_drop, "fidelity_db": _finite(check.fidelity_db),
                 "fidelity_lr_db": _finite(check.fidelity_lr_db), "judged_drop_db": _finite(check.judged_drop),
                 "max_drop_db": check.max_drop, "kept_float": list(check.kept_float),
                 "size_bytes": check.size_bytes, "verified": check.ok,
                 "model_status": made[0].summary() if made else None,
                 "raw_cut": made[0].raw_cut if made else None}, check.summary())
    return 0 if check.ok else 1


# -- parser --------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ssl-vsr", description="Structured Sparsity Learning for BasicVSR: "
                                "inspect, prune, evaluate and export video super-resolution models. "
                                "Run with no command to open the desktop app.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        return sp

    def device(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
        add_threads_option(sp)          # CPU threads go with the device choice (core.threads)

    def overwrite_flag(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--overwrite", action="store_true",
                        help="replace an existing output (never an input); without it an existing output is refused")

    def json_flag(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    def nonfinite_flag(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--allow-nonfinite", action="store_true",
                        help="load a checkpoint holding NaN/Inf weights (refused by default), for inspection")

    frames_min = at_least(2, " (BasicVSR needs two frames)")

    sub.add_parser("gui", help="open the desktop app (the default when no command is given)")

    sp = add("info", cmd_info, "describe a checkpoint: variant, widths, parameters, MACs per frame")
    sp.add_argument("checkpoint")
    sp.add_argument("--size", type=size_arg, default=(180, 320), help="LR frame size for MACs (default 180x320)")
    nonfinite_flag(sp)
    json_flag(sp)

    sp = add("sr", cmd_sr, "super-resolve a clip (frame folder or video) to a frame folder or video")
    sp.add_argument("checkpoint")
    sp.add_argument("input", help="folder of frames or a video file")
    sp.add_argument("output", help="output folder for PNG frames, or a video file (.mp4, .mkv, .mov, .avi)")
    sp.add_argument("--max-frames", type=frames_min, default=None, help="read at most this many frames")
    sp.add_argument("--codec", default=None,
                    help="video codec of a video output: h264 (default; mpeg4 for .avi), h265, mpeg4, mjpeg, ffv1")
    sp.add_argument("--quality", type=at_least(0), default=None,
                    help="the codec's quality scale (h264/h265: CRF 0-51, default 18/20; mpeg4/mjpeg: qscale 1-31)")
    sp.add_argument("--scratch", default=None, metavar="DIR",
                    help="folder for the temporary data of a long clip (default: beside the output); removed after")
    overwrite_flag(sp)
    device(sp)
    nonfinite_flag(sp)
    json_flag(sp)

    sp = add("eval", cmd_eval, "PSNR/SSIM per clip and mean, computed as BasicSR does: of a network on LR "
                               "clips, or of SR frames already made (--sr)")
    sp.add_argument("checkpoint", nargs="?", default=None, help="the network (with --lr); none with --sr")
    sp.add_argument("--lr", default=None, help="LR frames: one clip folder or a folder of clip folders")
    sp.add_argument("--sr", default=None, metavar="DIR",
                    help="SR frames already made (by sr or another tool; frames in name order, any naming, or a "
                         "video), laid out like --gt, scored instead of running a network")
    sp.add_argument("--gt", required=True, help="ground truth, laid out like --lr (or --sr)")
    sp.add_argument("--y", action="store_true", help="measure on the Y channel (BT.601) instead of RGB")
    sp.add_argument("--crop", type=at_least(0), default=0, help="pixels cropped from each border before measuring")
    sp.add_argument("--max-frames", type=frames_min, default=None, help="use at most this many frames per clip")
    sp.add_argument("--scratch", default=None, metavar="DIR",
                    help="folder for the temporary data of a long clip (default: the temp folder, or the user's "
                         "cache folder when temp is in RAM); removed after")
    device(sp)
    nonfinite_flag(sp)
    json_flag(sp)

    for name, fn, help_ in (("plan", cmd_plan, "show how a global pruning ratio falls on every layer"),
                            ("prune", cmd_prune, "prune physically (no training) and write a model file")):
        sp = add(name, fn, help_)
        sp.add_argument("checkpoint")
        add_plan_arguments(sp)
        sp.add_argument("--size", type=size_arg, default=(180, 320), help="LR frame size for MACs and latency")
        if name == "prune":
            sp.add_argument("--out", required=True, help="pruned model file to write")
            sp.add_argument("--calib", default=None, metavar="CLIP",
                            help="LR clip (frame folder or video, no ground truth) to reconstruct the cut on (the "
                                 "pruned layers are refitted to the dense network's activations) and that the "
                                 "contribution criterion is measured on. Default: the bundled demo clip, which is "
                                 "synthetic: on real video that cut scored below bicubic upscaling, while any real "
                                 "video recovered far more, your own the most")
            sp.add_argument("--no-reconstruct", action="store_true",
                            help="write the raw cut (no reconstruction): a starting point for training only")
            overwrite_flag(sp)
        else:
            sp.add_argument("--calib", default=None, metavar="CLIP",
                            help="LR clip the contribution criterion is measured on (default: the demo clip)")
        nonfinite_flag(sp)
        json_flag(sp)

    sp = add("export", cmd_export, "export a model file to ONNX (any frames/height/width; fp32 or int8) or an "
                                   "HDF5 report, verified before it is moved into place")
    sp.add_argument("model")
    sp.add_argument("--format", choices=("onnx", "h5"), required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                    help="int8: post-training static quantization (QDQ, per-channel), needs --calib")
    sp.add_argument("--calib", default=None, help="LR clip (frame folder or video) to calibrate int8 on "
                                                  "(the first 8 frames, at least 3 of at least 32x32)")
    sp.add_argument("--calib-gt", default=None, help="its ground truth: measure the int8 drop against GT "
                                                     "(default: predicted without GT, from the int8 file's error "
                                                     "against the float output and the float network's quality "
                                                     "estimated on the frames downscaled x4)")
    sp.add_argument("--max-drop", type=float, default=0.3,
                    help="Y-PSNR drop (dB) int8 may cost; the costliest layers stay float until it fits")
    sp.add_argument("--flow", choices=FLOW_RESOLUTIONS, default="full",
                    help="SpyNet's resolution in the file: half skips its finest level (faster, an approximation "
                         "whose cost int8's --max-drop budget includes)")
    add_threads_option(sp)
    overwrite_flag(sp)
    nonfinite_flag(sp)
    json_flag(sp)

    try:
        from .train.cli import add_train_commands
    except ImportError:
        pass
    else:
        add_train_commands(sub)
    from .study.cli import add_study_commands
    add_study_commands(sub)
    from .compress.cli import add_compress_command
    add_compress_command(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.simplefilter("default")
    interrupt_normally()        # start-up is over: Ctrl-C now unwinds the command (staged outputs clean up)
    previous = _terminate_like_interrupt()
    shown, warnings.showwarning = warnings.showwarning, _one_line_warning
    try:
        if getattr(args, "threads", None) is not None:
            set_threads(args.threads)
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one ``warning:`` line on stderr, as the CLI says everything (Python's own format adds the
    source line that raised it, which a user cannot act on)."""
    print(f"warning: {message}", file=file or sys.stderr)


def _terminate_like_interrupt():
    """SIGTERM (kill, a closing terminal, a job scheduler) unwinds like Ctrl-C, so partial outputs are removed."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)

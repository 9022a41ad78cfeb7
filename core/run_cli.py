"""``sr`` and ``eval``: a network (a checkpoint, or an .onnx file of ours) run over clips, and what is said about
how it was made before it runs."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli_args import check_scratch, emit, progress_bar, threads_note
from .errors import UserError
from .threads import compute_threads


RAW_CUT_WARNING = ("warning: {model}: {status}; reconstruct it (prune --calib YOUR_CLIP, "
                   "or a lower ratio) or train it first")
DEMO_ONLY_NOTE = ("note: {model}: {status}: on real video such networks have scored below bicubic upscaling; for "
                  "your video, prune --calib YOUR_VIDEO, or train it (resources/configs/quick.yaml)")


def warn_if_unrecovered(model: str, status) -> None:
    """One line on stderr (this module owns it) when ``status`` (``core.recover.status``) says raw cut, or
    recovered on the synthetic demo clip alone."""
    if status.raw_cut:
        print(RAW_CUT_WARNING.format(model=model, status=status.summary()), file=sys.stderr)
    elif status.demo_only:
        print(DEMO_ONLY_NOTE.format(model=model, status=status.summary()), file=sys.stderr)


def _say_heldout(model: str, network: Any) -> None:
    """What ``compress`` measured on frames it never read, as the file records it (``ssl_vsr.heldout``)."""
    from .compress.judge import ClipQuality

    try:
        records = json.loads(getattr(network, "meta", {}).get("ssl_vsr.heldout", "[]"))
    except ValueError:
        return
    records = records[:8] if isinstance(records, list) else []
    for quality in filter(None, map(ClipQuality.from_json, records)):
        print(f"note: {model}: compress judged it on frames it never read: {quality.line()}", file=sys.stderr)


def _onnx_source_meta(meta: dict[str, str]) -> dict[str, Any]:
    """The source model file's meta that ``export`` recorded in one of our .onnx files (``ssl_vsr.meta``)."""
    try:
        source = json.loads(meta.get("ssl_vsr.meta", "{}"))
    except ValueError:
        return {}
    return source if isinstance(source, dict) else {}


def _load_runnable(path: str, allow_nonfinite: bool):
    """What ``sr`` runs (a checkpoint's network, or the stepper of an .onnx of ours) and how it was made."""
    from .deploy.runtime import is_onnx, load_network
    from .recover.status import recovery_status

    if is_onnx(path):
        network = load_network(path, allow_nonfinite=allow_nonfinite)
        return network, recovery_status(_onnx_source_meta(network.meta), not network.spec.is_dense)
    from .io.checkpoint import load_checkpoint

    loaded = load_checkpoint(path, allow_nonfinite=allow_nonfinite)
    return loaded.model, recovery_status(loaded.meta, loaded.is_pruned)


def cmd_sr(args: argparse.Namespace) -> int:
    from .io.output import held_output
    from .io.source import is_video_path

    # Refusals first (output, codec, clip length), so they cost nothing; the output's lock is held from here on.
    with held_output(args.output, kind="file" if is_video_path(args.output) else "folder",
                     inputs=[args.input, args.checkpoint], overwrite=args.overwrite) as out:
        return _sr(args, out)


def _sr(args: argparse.Namespace, out: Path) -> int:
    from .device import resolve_device
    from .deploy.runtime import run_device
    from .io.frames import read_clip
    from .io.source import check_sink, open_sink, open_source
    from .memory import check_network_memory
    from .preflight import check_clip_length
    from .recover.measured import PROBE_FRAMES, measured_status
    from .stream import stream_sr

    inputs = [args.input, args.checkpoint]
    check_sink(out, args.codec, args.quality)
    check_scratch(args.scratch, (args.input, args.checkpoint))
    device = resolve_device(args.device)
    source = open_source(args.input, max_frames=args.max_frames)
    check_clip_length(source.count, source.name)       # before any inference
    network, status = _load_runnable(args.checkpoint, args.allow_nonfinite)         # checkpoint or our .onnx
    device = run_device(network, device)
    check_network_memory(source.size, network.spec.num_feat, f"clip {source.name}", device)    # before any inference
    status = measured_status(status, network, read_clip(args.input, max_frames=PROBE_FRAMES).frames, device)
    warn_if_unrecovered(args.checkpoint, status)
    _say_heldout(args.checkpoint, network)
    bar = progress_bar(f"sr {source.name}", args.json)
    # Scratch beside the output is named like the output's own staged temp: a killed run's leftovers are swept by
    # the next writer of that output (core.io.output).
    scratch, prefix = (args.scratch, ".ssl-vsr-scratch-") if args.scratch else (out.parent, f".{out.name}.partial-")
    with open_sink(out, fps=source.fps, inputs=inputs, overwrite=args.overwrite, audio_from=source,
                   codec=args.codec, quality=args.quality, names=source.frame_names) as sink:
        run = stream_sr(network, source, sink, device=device, progress=bar, scratch=scratch,
                        scratch_prefix=prefix)
    bar.close()
    h, w = run.out_size
    per_frame, timing = run.seconds / max(run.frames_done, 1), run.timing
    data = {"output": str(out), "frames": run.frames_done, "size": [h, w], "seconds": run.seconds,
            "seconds_per_frame": per_frame, "network_seconds_per_frame": timing.network,
            "network_seconds_per_frame_average": timing.network_average, "io_seconds_per_frame": timing.io,
            "threads": compute_threads(device),
            "device": str(device), "scratch_bytes": run.scratch_bytes,
            "model_status": status.summary(), "raw_cut": status.raw_cut}
    emit(args, data, f"wrote {run.frames_done} frames of {h}x{w} (HxW) to {out} ({per_frame:.3f} s/frame on {device}: "
                      f"network {timing.network:.3f} s/frame once warm{threads_note(device)} "
                      f"({timing.network_average:.3f} on average over this clip), reading and writing "
                      f"{timing.io:.3f} s/frame; "
                      f"{run.scratch_bytes / 2**20:.1f} MiB of scratch data)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .device import resolve_device
    from .evaluate import evaluate_dataset, score_frames
    from .preflight import check_eval_inputs, check_scored_frames
    from .deploy.runtime import load_network, run_device
    from .memory import check_network_memory

    scoring_frames = args.sr is not None and args.checkpoint is None and args.lr is None
    if not scoring_frames and (args.sr is not None or args.checkpoint is None or args.lr is None):
        raise UserError("give a network and its LR clips (eval MODEL --lr LR --gt GT) or SR frames already made "
                        "(eval --sr SR --gt GT)")
    check_scratch(args.scratch, tuple(getattr(args, k) for k in ("lr", "gt", "sr", "checkpoint")))
    bar = progress_bar("eval", args.json)
    if args.sr is not None:
        check_scored_frames(args.sr, args.gt, args.crop)              # before reading a frame
        report = score_frames(args.sr, args.gt, y=args.y, crop_border=args.crop, max_frames=args.max_frames,
                              progress=bar)
    else:
        device = resolve_device(args.device)
        lr_sizes = check_eval_inputs(args.lr, args.gt, args.crop, args.max_frames)  # lengths, sizes, crop
        network = load_network(args.checkpoint, allow_nonfinite=args.allow_nonfinite)   # checkpoint or our .onnx
        device = run_device(network, device)
        for name, size in lr_sizes:             # before inference: a clip the network cannot run at in memory
            check_network_memory(size, network.spec.num_feat, f"clip {name}", device)
        report = evaluate_dataset(network, args.lr, args.gt, device=device, y=args.y, crop_border=args.crop,
                                  max_frames=args.max_frames, progress=bar, scratch=args.scratch)
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
    emit(args, data, "\n".join(rows))
    return 0

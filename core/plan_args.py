"""The plan options shared by ``plan`` and ``prune``: ratio or latency target, criterion, floor, width multiple,
locks and caps — parsed into one ``PlanSettings`` so both commands (and the files they write) agree.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from .errors import UserError
from .models.spec import MAX_WIDTH, ArchSpec
from .ssl.criteria import CRITERIA, DEFAULT_CRITERION, REGISTRY
from .ssl.plan import RECOMMENDED_ALIGN, Plan, check_ratio, plan_with
from .ssl.scores import UnitScores
from .ssl.settings import PlanSettings, unknown_layer_message
from .ssl.units import prunable_layers, stream_layer_names
from .threads import add_threads_option


def _cap(text: str) -> tuple[str, float]:
    name, sep, value = text.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        cap = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-ratio wants LAYER=RATIO (e.g. fusion=0.25), got {text!r}") from None
    if not 0.0 <= cap <= 1.0:
        raise argparse.ArgumentTypeError(f"--max-ratio {text}: the ratio must be in [0, 1]")
    return name, cap


# A latency target (ms per frame, or frames per second) past these is no target at all; bounding it keeps every
# figure derived from it (the other unit, the messages that quote both) a plain number (1e-300 ms is 1e300 fps).
TARGET_MIN, TARGET_MAX = 1e-9, 1e9


def target_arg(text: str) -> float:
    """argparse type of a latency target (``--target-ms``, ``--target-fps``; ``compress --target-ms`` too): a finite
    positive number within [TARGET_MIN, TARGET_MAX]."""
    try:
        value = float(text)
        if not TARGET_MIN <= value <= TARGET_MAX:       # also refuses NaN and infinities
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number from {TARGET_MIN:g} to {TARGET_MAX:g}, "
                                         f"got {text!r}") from None
    return value


def _whole(text: str) -> int:
    """A unit count (--min-keep, --align): 1 up to the widest layer a network may have (``MAX_WIDTH``); past that
    it only ever means "keep every unit", which a plan at a ratio would report as pruning nothing."""
    try:
        value = int(text)
        if not 1 <= value <= MAX_WIDTH:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_WIDTH}, got {text!r}") from None
    return value


def add_plan_arguments(sp: argparse.ArgumentParser) -> None:
    """--ratio | --target-ms | --target-fps, --criterion, --min-keep, --align, --lock, --max-ratio, --latency-device,
    --threads."""
    how = sp.add_mutually_exclusive_group(required=True)
    how.add_argument("--ratio", type=float, help="global pruning ratio in [0, 1)")
    how.add_argument("--target-ms", type=target_arg, metavar="MS",
                     help="latency target: the plan predicted to run at MS per frame at --size on this device "
                          "and thread count, as `sr` reports the network's time (layer latencies measured once "
                          "and cached; reading and writing come on top and are reported apart)")
    how.add_argument("--target-fps", type=target_arg, metavar="FPS", help="latency target in frames per second")
    sp.add_argument("--criterion", choices=CRITERIA, default=DEFAULT_CRITERION,
                    help="; ".join(f"{c.name}: {c.help}" for c in REGISTRY.values()))
    sp.add_argument("--min-keep", type=_whole, default=1, help="units every layer keeps at least")
    sp.add_argument("--align", type=_whole, default=RECOMMENDED_ALIGN,
                    help=f"round each layer's kept count to a multiple (default {RECOMMENDED_ALIGN}: narrow odd "
                         f"widths run slowly; 1 = the paper's exact global cut; latency targets use steps of 16)")
    sp.add_argument("--lock", action="append", default=[], metavar="LAYER",
                    help="keep LAYER whole (repeatable), e.g. --lock fusion --lock forward.0.mid")
    sp.add_argument("--keep-stream", action="store_true",
                    help="lock every layer that cuts the 64-channel hidden stream (the channels each residual block "
                         "reads and writes): only the blocks' inner filters and the head are pruned. Recovered "
                         "better at equal MACs on every clip measured; the saving stops near 2.4x fewer MACs")
    sp.add_argument("--max-ratio", action="append", default=[], type=_cap, metavar="LAYER=R",
                    help="prune LAYER by at most R (repeatable), e.g. --max-ratio upconv1=0.25")
    sp.add_argument("--latency-device", default="cpu",
                    help="device whose latency a target is planned for: cpu (default), cuda or auto")
    add_threads_option(sp)      # a CPU target holds at the thread count it was planned for


@dataclass(frozen=True)
class PlanOutcome:
    plan: Plan
    predicted_ms: float | None = None      # for latency targets (the table's prediction)
    target_ms: float | None = None
    device: str = "cpu"                    # the device the prediction is for


def check_plan_args(args: argparse.Namespace, spec: ArchSpec) -> PlanSettings:
    """The plan settings the command line gives, checked against ``spec``'s layers before any scoring (a criterion
    measured on frames runs the network: a bad ratio or layer name is refused first)."""
    if args.ratio is not None:
        check_ratio(args.ratio)
    locks = (*args.lock, *(stream_layer_names(spec) if args.keep_stream else ()))
    settings = PlanSettings(args.ratio if args.ratio is not None else 0.0, args.criterion, args.min_keep,
                            args.align, locks, tuple(args.max_ratio))
    names = [l.name for l in prunable_layers(spec)]
    for name in (*settings.locks, *(k for k, _ in settings.caps)):
        if name not in names:
            raise UserError(unknown_layer_message(name, names))
    if args.target_ms is not None or args.target_fps is not None:      # the latency table runs layers at --size
        from .memory import check_network_memory

        check_network_memory(tuple(args.size), spec.num_feat, f"--size {args.size[0]}x{args.size[1]}")
    return settings


def plan_from_args(args: argparse.Namespace, scores: UnitScores) -> PlanOutcome:
    """The plan the command line describes, on ``scores``; UserError for unknown layers or unmet targets."""
    settings = check_plan_args(args, scores.spec)
    size = tuple(args.size)
    target = args.target_ms if args.target_ms is not None else (
        1000.0 / args.target_fps if args.target_fps is not None else None)
    if target is None:
        return PlanOutcome(plan_with(scores, settings, size))
    from .device import resolve_device
    from .profile.latency import latency_table
    from .ssl.target import plan_for_latency, predicted_ms

    device = resolve_device(args.latency_device)
    table = latency_table(device, size, scores.spec.num_feat, scores.spec.bidirectional)
    plan = plan_for_latency(scores, table, target, min_keep=args.min_keep, overrides=settings.overrides,
                            frame_size=size)
    return PlanOutcome(plan, predicted_ms(plan, table), target, str(device))

"""The ``train`` sub-command: a config file in, a run folder out, progress on stderr.

    python main.py train CONFIG [--run-dir DIR] [--stages prune,finetune] [--plan PLAN.json] [--set key.sub=value ...]
                                [--device cpu|cuda|auto] [--threads N] [--json]
    python main.py train [CONFIG] --resume DIR       (CONFIG defaults to DIR/run_config.yaml)
    torchrun --nproc_per_node 8 main.py train CONFIG --run-dir DIR     (DistributedDataParallel)

Ctrl-C stops at the next iteration with the state saved (a second Ctrl-C aborts at once).
A run folder in use by a live run is refused (exit 2). ``--resume`` of a finished run says so in one line and
exits 0 with nothing changed (so a job script may resume until the run is done).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..errors import UserError
from ..io.bounded_read import read_regular
from ..io.safe_json import JSONSyntaxError, load_json_text
from ..events import Cancelled, Event, Progress, RunControl
from ..threads import add_threads_option
from ..ssl.settings import PlanSettings
from .config import plan_overrides
from .config_load import load_config
from .logfile import event_to_json, format_event
from .pipeline import run_training
from .runfolder import RUN_CONFIG, RunFinished, check_resume_folder, forget_refused_run

MAX_PLAN_BYTES = 16 * 2**20


def add_train_commands(subparsers: Any) -> None:
    """Register ``train`` on an argparse sub-parser set; the handler is stored as ``func``."""
    p = subparsers.add_parser("train", help="SIR → prune → finetune (and optional pretrain) from a YAML config",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="YAML config (see resources/configs/)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last saved states")
    p.add_argument("--run-dir", metavar="DIR", help="where to write the run (default: runs/<config>-<time>)")
    p.add_argument("--stages", help="comma-separated subset of pretrain,sir,prune,finetune, in that order (sir or "
                                    "prune: each cuts the network; overrides the config)")
    p.add_argument("--plan", metavar="PLAN.json",
                   help="train to the plan `plan ... --json` printed (ratio, criterion, locks, caps, a latency "
                        "target's widths): it replaces the config's sir plan keys; --set still applies after it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set sir.ratio=0.6 (repeatable)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (overrides runtime.device)")
    add_threads_option(p)
    p.add_argument("--json", action="store_true", help="print events as JSON lines on stdout instead of a bar")
    p.set_defaults(func=train_command)


def train_command(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit code (UserError propagates for the caller to print)."""
    run_dir, config_path = _paths(args)
    if args.resume:
        check_resume_folder(run_dir)    # before its run_config.yaml is read: never through a link planted there
    overrides = plan_file_overrides(args.plan) if args.plan else []
    overrides += args.set
    if args.stages:
        overrides.append(f"stages=[{args.stages}]")
    if args.device:
        overrides.append(f"runtime.device={args.device}")
    config = load_config(config_path, overrides)
    sink = _JsonLines(sys.stdout) if args.json else _ProgressBar(sys.stderr)
    control = RunControl()
    fresh = not args.resume and not run_dir.exists() and not run_dir.is_symlink()
    previous = signal.signal(signal.SIGINT, _on_interrupt(control))
    try:
        result = run_training(config, run_dir, sink, control, resume=bool(args.resume))
    except Cancelled:
        sys.stderr.write(f"\ncancelled; state saved. Continue with: train --resume {run_dir}\n")
        return 130
    except RunFinished as done:         # not an error: the run is complete and was left as it was
        sys.stderr.write(f"{done}\n")
        return 0
    except UserError:                   # refused before its first unit of work: no empty folder left behind
        if fresh:
            forget_refused_run(run_dir)
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    sink.close()
    for name in ("pruned_model", "best_model", "report", "last_checkpoint", "log"):
        value = getattr(result, name)
        if value is not None:
            sys.stderr.write(f"{name.replace('_', ' ')}: {value}\n")
    return 0


def plan_file_overrides(path: str | Path) -> list[str]:
    """``sir.*=value`` overrides carrying the plan in a ``plan --json`` file (JSON values are YAML too)."""
    p = Path(path)
    try:
        text = read_regular(p, MAX_PLAN_BYTES, "plan").decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p}: cannot read the plan (not text)") from None
    try:
        data = load_json_text(text, str(p))        # bounded: nesting depth, NaN/Infinity, 1e400
    except JSONSyntaxError:
        data = None
    settings = data.get("settings") if isinstance(data, dict) else None
    if not isinstance(settings, dict):
        raise UserError(f"{p}: not a plan (expected the JSON that `plan ... --json` prints, with its settings)")
    return [f"{key}={json.dumps(value)}" for key, value in plan_overrides(PlanSettings.from_json(settings)).items()]


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise UserError("give either --resume DIR or --run-dir DIR, not two different folders")
        config = Path(args.config) if args.config else run_dir / RUN_CONFIG
        return run_dir, config
    if not args.config:
        raise UserError("train needs a CONFIG file (or --resume DIR)")
    config = Path(args.config)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{config.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_dir, config


def _on_interrupt(control: RunControl):
    def handler(signum, frame) -> None:
        if control.cancelled:
            raise KeyboardInterrupt
        control.cancel()
    return handler


class _ProgressBar:
    """Progress events redraw one line on a terminal; everything else is printed as a line above it."""

    WIDTH = 24

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.open = False

    def __call__(self, e: Event) -> None:
        if isinstance(e, Progress):
            done = int(self.WIDTH * e.iteration / max(e.total, 1))
            bar = "#" * done + "-" * (self.WIDTH - done)
            self.out.write(f"\r[{bar}] {format_event(e)}\x1b[K" if self.out.isatty() else f"{format_event(e)}\n")
            self.open = self.out.isatty()
        else:
            self.close()
            self.out.write(format_event(e) + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.open:
            self.out.write("\n")
            self.open = False


class _JsonLines:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, e: Event) -> None:
        self.out.write(event_to_json(e) + "\n")
        self.out.flush()

    def close(self) -> None:
        """Nothing to finish (lines are complete)."""

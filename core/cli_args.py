"""What every command of the CLI shares: argument types whose refusals read as one line, and how results and
progress are shown (``--json`` on stdout, a bar or plain lines on stderr)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from .errors import UserError
from .io.limits import MAX_SIDE     # the one owner of frame-size bounds; --size takes the frames the readers take
from .io.missing import why_missing
from .threads import compute_threads


def parse_size(text: str, lowest: int = 1) -> tuple[int, int]:
    """HxW (height x width), each side within [``lowest``, ``MAX_SIDE``] (the bounds every frame reader keeps);
    ``ValueError`` otherwise."""
    h, w = (int(v) for v in text.lower().split("x"))
    if not (lowest <= h <= MAX_SIDE and lowest <= w <= MAX_SIDE):
        raise ValueError(text)
    return h, w


def size_arg(text: str) -> tuple[int, int]:
    """argparse type: an LR frame size HxW."""
    try:
        return parse_size(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 180x320 (height x width, each 1..{MAX_SIDE}), "
                                         f"got {text!r}") from None


def at_least(lowest: int, why: str = "") -> Callable[[str], int]:
    """argparse type: an integer >= ``lowest`` (``why`` says what a smaller one would mean)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be at least {lowest}{why}, got {value}")
        return value

    return parse


def emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, indent=2, default=str) if getattr(args, "json", False) else text)


def fmt_int(n: int) -> str:
    return f"{n:,}"


def progress_bar(label: str, quiet: bool) -> "Callable[[int, int], None]":
    from .progress_bar import ProgressBar

    return ProgressBar(label, enabled=False if quiet else None)


def check_scratch(scratch: str | None, inputs: tuple[str | None, ...] = ()) -> None:
    """A ``--scratch`` folder that exists and lies outside every input: the run's temporary data would otherwise
    appear inside the user's clip folder (and in its listing) for as long as the run lasts."""
    if scratch is None:
        return
    if not Path(scratch).is_dir():
        missing = why_missing(scratch, "folder")
        raise UserError(f"--scratch {scratch}: {missing}" if missing else f"--scratch {scratch} is not a folder")
    from .io.output import path_relation

    for src in inputs:
        if src is not None and path_relation(scratch, src) in ("same", "inside"):
            raise UserError(f"--scratch {scratch} is inside the input {src}: choose a folder outside it")


def threads_note(device: object) -> str:
    threads = compute_threads(device)
    return "" if threads is None else f" at {threads} thread{'s' if threads != 1 else ''}"

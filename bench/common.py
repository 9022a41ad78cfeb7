"""Helpers shared by the bench scripts: paths, the allocator setting, table printing."""
from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared"


def add_allocator_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retain", action=argparse.BooleanOptionalAction, default=True,
                        help="keep freed memory for reuse, as main.py does (core.memory); --no-retain measures "
                             "glibc's default")


def apply_allocator(args: argparse.Namespace) -> str:
    """Apply ``--retain`` and name the allocator setting for the table's caption."""
    from core.memory import retain_freed_memory

    return "freed memory retained" if args.retain and retain_freed_memory() else "glibc default allocator"


def cpu_flags() -> str:
    """The SIMD flags that decide conv speed on this CPU (AVX2 / AVX-512 / VNNI / BF16): printed with each table."""
    from core.profile.cpu import cpu_flags as flags

    return " ".join(flags()) or platform.processor() or "no AVX2"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths)) + " |"
    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells[1:]:
        print(line(r))


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)

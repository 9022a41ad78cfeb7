"""The program's one entry point: no arguments (or ``gui``) opens the desktop app, anything else is the CLI.

Kept apart from ``app.launch`` so the headless commands never import Qt.
"""
from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from core.memory import retain_freed_memory

    retain_freed_memory()
    if not args or args[0] == "gui":
        from app.launch import main as gui_main

        return gui_main(args[1:])
    from core.cli import main as cli_main

    return cli_main(args)

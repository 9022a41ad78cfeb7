"""The program's one entry point: no arguments (or ``gui``) opens the desktop app, anything else is the CLI.

Kept apart from ``app.launch`` so the headless commands never import Qt.
"""
from __future__ import annotations

import signal
import sys
from typing import Sequence

from core.interrupt import EXIT_INTERRUPTED, exit_on_interrupt_during_startup, interrupt_normally
from core.threads import configure_startup


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    exit_on_interrupt_during_startup()      # core.cli.main hands Ctrl-C back to the command when it starts
    configure_startup()                     # OpenMP wait policy: read once, when torch loads libgomp
    try:
        from core.memory import retain_freed_memory

        retain_freed_memory()
        if not args or args[0] == "gui":
            interrupt_normally()            # the desktop app handles Ctrl-C as it always has
            from app.launch import main as gui_main

            return gui_main(args[1:])
        from core.cli import main as cli_main

        return cli_main(args)
    except KeyboardInterrupt:       # a Ctrl-C that reached the top: no traceback
        return interrupted()


def interrupted() -> int:
    """Report a Ctrl-C that reached the top in one line; returns the exit code (130, as shells use)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # a second Ctrl-C must not break the message or the exit
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    return EXIT_INTERRUPTED

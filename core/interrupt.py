"""Ctrl-C during start-up: one line, exit code 130, no traceback, whatever is being imported at that moment.

Why: a KeyboardInterrupt raised while torch's C++ extensions import can abort the process ("terminate called
after throwing an instance of 'pybind11::error_already_set'") or be swallowed by a library so the command
runs anyway. Until a command starts nothing has been written, so SIGINT simply ends the process at once;
the command itself then gets Python's normal KeyboardInterrupt, which lets staged outputs clean up.
"""
from __future__ import annotations

import os
import signal
import threading

EXIT_INTERRUPTED = 130
MESSAGE = b"interrupted\n"


def _exit_now(signum: int, frame: object) -> None:
    os.write(2, MESSAGE)
    os._exit(EXIT_INTERRUPTED)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def exit_on_interrupt_during_startup() -> None:
    """Make SIGINT end the process immediately (only over Python's default handler, in the main thread)."""
    if _main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _exit_now)


def interrupt_normally() -> None:
    """Back to KeyboardInterrupt once a command starts (a no-op unless start-up handling is installed)."""
    if _main_thread() and signal.getsignal(signal.SIGINT) is _exit_now:
        signal.signal(signal.SIGINT, signal.default_int_handler)

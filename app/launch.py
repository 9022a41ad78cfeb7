"""Entry point of the desktop app: ``python main.py`` or ``ssl-vsr`` with no command (see ``app.entry``)."""
from __future__ import annotations

import os
import sys
import traceback
from types import TracebackType

# Idle OpenMP threads must sleep, not spin: the GUI thread and the worker threads each get an OpenMP team, and
# on a small CPU a spinning team starves the other (a 15 ms op took 3 s). Set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from PySide6.QtWidgets import QApplication  # noqa: E402

from .dialogs import show_error  # noqa: E402
from .main_window import MainWindow  # noqa: E402
from .resources import icon, style_sheet  # noqa: E402


def _excepthook(window: MainWindow):
    """Uncaught exceptions in slots become a dialog (and stderr), never a dead window."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        trace = "".join(traceback.format_exception(kind, exc, tb))
        sys.stderr.write(trace)
        show_error(window, "Unexpected error", exc, trace)

    return hook


# Every virtual call PySide6 makes into a widget (paint, size hints, events) takes the GIL. While worker threads
# run Python between their torch ops, a thread waiting for the GIL gets it only after the switch interval
# (5 ms by default), so one repaint that needs it forty times took 200 ms. At 0.5 ms the GUI thread waits
# little, and the workers, which spend their time in torch ops that release the GIL, lose nothing measurable.
GIL_SWITCH_INTERVAL_S = 0.0005


def create_app(argv: list[str]) -> QApplication:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    app = QApplication.instance() or QApplication(argv)
    app.setOrganizationName("ssl-vsr")
    app.setApplicationName("SSL-VSR Explorer")
    app.setWindowIcon(icon("app"))
    app.setStyleSheet(style_sheet())
    return app


def main(argv: list[str] | None = None) -> int:
    """Open the window with the demo clip and the official REDS4 weights (when installed), or any paths given."""
    argv = list(sys.argv if argv is None else [sys.argv[0], *argv])
    app = create_app(argv)
    window = MainWindow()
    sys.excepthook = _excepthook(window)
    window.show()
    window.state.warm_up_engine()
    paths = [a for a in argv[1:] if not a.startswith("-")]
    if paths:
        for path in paths:
            window.open_path(path)
    else:
        window.load_defaults()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())

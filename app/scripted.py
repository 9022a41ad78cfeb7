"""Driving the window from a script (benchmarks, screenshots): wait on the app's own signals, and open the
default window with its settings kept in a scratch folder so the user's QSettings are never touched."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, QTimer

from core.ssl import DEFAULT_CRITERION

from .launch import create_app
from .main_window import MainWindow


def wait_for(signal, timeout_s: float = 600) -> None:
    """Run the event loop until ``signal`` fires (or raise TimeoutError after ``timeout_s``)."""
    loop = QEventLoop()
    signal.connect(loop.quit)
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: loop.exit(1))
    timer.start(int(timeout_s * 1000))
    if loop.exec() != 0:
        raise TimeoutError(f"no {signal} within {timeout_s} s")
    signal.disconnect(loop.quit)


def open_default_window(work: Path, argv0: str = "ssl-vsr") -> MainWindow:
    """The window as ``python main.py`` opens it (official weights + demo clip), once the model has loaded and the
    Prune step's default criterion has scored its units on the clip (in the background: a script that moved the
    ratio before that found no plan to show or apply)."""
    create_app([argv0])
    window = MainWindow(QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat))
    window.show()
    window.state.warm_up_engine()
    window.load_defaults()
    wait_for(window.state.modelChanged)
    while window.state.scores(DEFAULT_CRITERION) is None:
        wait_for(window.state.scoresChanged)
    return window

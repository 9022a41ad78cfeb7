"""Fixtures shared by the GUI tests."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.launch import GIL_SWITCH_INTERVAL_S
from app.main_window import MainWindow


@pytest.fixture
def dialogs(monkeypatch) -> list[tuple[str, str, str]]:
    """Every message box the app opens, captured instead of shown: (kind, title, text)."""
    seen: list[tuple[str, str, str]] = []

    def capture(kind: str, answer=QMessageBox.StandardButton.Ok):
        def box(parent, title, text, *args, **kwargs):
            seen.append((kind, title, text))
            return answer
        return box

    monkeypatch.setattr(QMessageBox, "warning", capture("warning"))
    monkeypatch.setattr(QMessageBox, "critical", capture("critical"))
    monkeypatch.setattr(QMessageBox, "question", capture("question", QMessageBox.StandardButton.Yes))
    return seen


@pytest.fixture
def window(qtbot, tmp_path, dialogs, monkeypatch) -> MainWindow:
    """A shown main window with its own settings file; run folders (runs/gui-…) land in the test's folder. The
    interpreter's GIL switch interval is the one the app launches with (app.launch.create_app)."""
    monkeypatch.chdir(tmp_path)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.show()
    yield w
    w.state.runner.cancel_all()
    w.state.runner.wait_all(60_000)
    sys.setswitchinterval(interval)

"""Settings → CPU threads: the GUI's ``--threads``, remembered between sessions.

Why a menu and not a panel field: it applies to every step (compare, train, export, study), and only to jobs
started after the change (each job runs in a new thread that picks the count up on its first computation).
"""
from __future__ import annotations

import os
from typing import Callable

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenuBar

from core.threads import resolve_threads, set_threads, usable_cores

SETTINGS_KEY = "cpu/threads"       # 0 or absent: automatic (core.threads' default)


def saved_threads(settings: QSettings) -> int | None:
    """The thread count stored in ``settings`` (None: automatic; anything unreadable counts as automatic)."""
    try:
        value = int(settings.value(SETTINGS_KEY, 0))
        return None if value < 1 else resolve_threads(value, usable_cores(), {})
    except (TypeError, ValueError):
        return None


def add_threads_menu(bar: QMenuBar, settings: QSettings, on_change: Callable[[int], None]) -> QActionGroup:
    """Add Settings → CPU threads (Automatic, 1..cores), apply the saved choice now; ``on_change(n)`` after a pick."""
    cores = usable_cores()
    menu = bar.addMenu("Se&ttings").addMenu("CPU &threads")
    menu.setToolTipsVisible(True)
    group = QActionGroup(menu)
    current = saved_threads(settings)
    auto = resolve_threads(None, cores, os.environ)
    choices = [(None, f"&Automatic ({auto})")] + [(n, f"&{n}") for n in range(1, max(cores, 1) + 1)]
    for value, text in choices:
        act = QAction(text, menu, checkable=True)
        act.setData(0 if value is None else value)
        act.setChecked(value == current)
        if value == 1:
            act.setToolTip("the steadiest speed when other programs keep the cores busy")
        group.addAction(act)
        menu.addAction(act)

    def picked(act: QAction) -> None:
        value = int(act.data())
        settings.setValue(SETTINGS_KEY, value)
        on_change(set_threads(value or None))

    group.triggered.connect(picked)
    set_threads(current)
    return group

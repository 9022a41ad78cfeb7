"""The GUI tests' heartbeat tells a GUI thread that waited on something (a stall) from one that ran (busy)."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import time  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtCore import QTimer  # noqa: E402

from tests.qt_heartbeat import Heartbeat  # noqa: E402


def _beats_around(qtbot, block) -> Heartbeat:
    beat = Heartbeat().start()
    qtbot.wait(100)
    beat.phase = "block"
    QTimer.singleShot(0, block)
    qtbot.wait(200)
    beat.stop()
    return beat


def test_a_gui_thread_that_waits_is_a_stall_not_busy(qtbot) -> None:
    beat = _beats_around(qtbot, lambda: time.sleep(0.4))
    assert [phase for phase, _ in beat.stalls(300)] == ["block"] and not beat.busy(300), beat.worst()


def test_a_gui_thread_that_computes_is_busy_not_a_stall(qtbot) -> None:
    def spin() -> None:
        end = time.thread_time() + 0.4
        while time.thread_time() < end:
            pass

    beat = _beats_around(qtbot, spin)
    assert [phase for phase, _ in beat.busy(300)] == ["block"] and not beat.stalls(300), beat.worst()

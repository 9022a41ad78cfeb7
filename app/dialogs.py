"""Every failure the user can cause ends in a message box, never in a crash.

``UserError`` (bad file, bad folder, bad ratio) gets its one-line message as a warning; anything else is a bug
and gets a critical box with the exception and the last lines of its traceback.
"""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from core.errors import UserError


def show_error(parent: QWidget | None, title: str, exc: BaseException, trace: str = "",
               extra: str = "") -> None:
    """Tell the user what went wrong; ``extra`` adds context such as the last checkpoint of a failed run."""
    if isinstance(exc, UserError):
        text = str(exc)
        if extra:
            text += "\n\n" + extra
        QMessageBox.warning(parent, title, text)
        return
    tail = "\n".join(trace.strip().splitlines()[-4:]) if trace else ""
    text = f"{type(exc).__name__}: {exc}"
    if extra:
        text += "\n\n" + extra
    if tail:
        text += "\n\n" + tail
    QMessageBox.critical(parent, title, text)


def ask_yes_no(parent: QWidget | None, title: str, question: str) -> bool:
    """A blocking yes/no question (No is the default, so a stray Enter does not stop a run)."""
    answer = QMessageBox.question(parent, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes

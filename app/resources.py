"""Where the app's icons, style sheet and demo clip are (resolved from the source tree, like the demo clip)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def icon(name: str) -> QIcon:
    """An icon from resources/icons (an empty icon if the file is missing, never an error)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def style_sheet() -> str:
    path = RESOURCES / "style.qss"
    return path.read_text(encoding="utf-8") if path.is_file() else ""

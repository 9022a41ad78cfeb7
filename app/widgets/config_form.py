"""A form over chosen keys of the training config (``section.key``), grouped in boxes.

The form only holds text and choices; core's ``config_from_dict`` checks every value, so the GUI and the CLI
refuse exactly the same inputs with the same message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLineEdit,
                               QMenu, QPushButton, QSpinBox, QWidget)

from core.io.frames import VIDEO_EXTS

PATH_KINDS = ("path", "dir", "clip")     # a file, a folder, a frames folder or a video


@dataclass(frozen=True)
class Field:
    key: str                           # 'sir.delta'
    label: str
    kind: str                          # int | float | text | path | dir | clip | choice | bool
    tip: str = ""
    choices: tuple[tuple[str, Any], ...] = ()   # (label, value) for kind 'choice'
    maximum: int = 10_000_000


def get_nested(raw: dict[str, Any], key: str) -> Any:
    section, name = key.split(".")
    return raw.get(section, {}).get(name)


def set_nested(raw: dict[str, Any], key: str, value: Any) -> None:
    section, name = key.split(".")
    raw.setdefault(section, {})[name] = value


class PathEdit(QWidget):
    """A line edit with a Browse button: a file, a folder, or (``clip``) either a frames folder or a video —
    where a video is accepted, the picker takes one (it took folders only, so a video's path had to be typed)."""

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("(none)")
        self.button = QPushButton("…")
        self.button.setFixedWidth(30)
        self._kind = kind
        if kind == "clip":
            menu = QMenu(self.button)
            menu.addAction("Folder of frames or clips…", self._choose_folder)
            menu.addAction("Video file…", self._choose_video)
            self.button.setMenu(menu)
            self.button.setStyleSheet("QPushButton::menu-indicator { image: none; width: 0px; }")   # fits 30 px
        else:
            self.button.clicked.connect(self._choose_folder if kind == "dir" else self._choose_file)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)

    def _choose_folder(self) -> None:
        self._set(QFileDialog.getExistingDirectory(self, "Choose folder", self.edit.text()))

    def _choose_file(self) -> None:
        self._set(QFileDialog.getOpenFileName(self, "Choose file", self.edit.text())[0])

    def _choose_video(self) -> None:
        pattern = " ".join(f"*{ext}" for ext in VIDEO_EXTS)
        self._set(QFileDialog.getOpenFileName(self, "Choose video", self.edit.text(),
                                              f"Videos ({pattern});;All files (*)")[0])

    def _set(self, path: str) -> None:
        if path:
            self.edit.setText(path)


class ConfigForm(QWidget):
    def __init__(self, sections: list[tuple[str, list[Field]]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.fields: dict[str, Field] = {}
        self.widgets: dict[str, QWidget] = {}
        self.boxes: list[QGroupBox] = []
        for title, fields in sections:
            box = QGroupBox(title)
            form = QFormLayout(box)
            for f in fields:
                widget = self._make(f)
                widget.setToolTip(f.tip)
                form.addRow(f.label, widget)
                self.fields[f.key], self.widgets[f.key] = f, widget
            self.boxes.append(box)

    @staticmethod
    def _make(f: Field) -> QWidget:
        if f.kind == "int":
            w = QSpinBox()
            w.setRange(0, f.maximum)
            return w
        if f.kind == "choice":
            w = QComboBox()
            for label, value in f.choices:
                w.addItem(label, value)
            return w
        if f.kind == "bool":
            return QCheckBox()
        if f.kind in PATH_KINDS:
            return PathEdit(f.kind)
        return QLineEdit()

    def set_values(self, raw: dict[str, Any]) -> None:
        """Show the values of a config dict (``TrainConfig.to_dict()``)."""
        for key, f in self.fields.items():
            self.set_value(key, get_nested(raw, key))

    def set_value(self, key: str, value: Any) -> None:
        f, w = self.fields[key], self.widgets[key]
        if f.kind == "int":
            w.setValue(int(value or 0))
        elif f.kind == "choice":
            i = w.findData(value)
            w.setCurrentIndex(max(i, 0))
        elif f.kind == "bool":
            w.setChecked(bool(value))
        elif f.kind in PATH_KINDS:
            w.edit.setText("" if value is None else str(value))
        else:
            w.setText("" if value is None else (f"{value:g}" if isinstance(value, float) else str(value)))

    def value(self, key: str) -> Any:
        """The widget's value as config data (empty text is null; numbers stay text for core to check)."""
        f, w = self.fields[key], self.widgets[key]
        if f.kind == "int":
            return w.value()
        if f.kind == "choice":
            return w.currentData()
        if f.kind == "bool":
            return w.isChecked()
        text = (w.edit.text() if f.kind in PATH_KINDS else w.text()).strip()
        if not text:
            return None
        if f.kind == "float":
            try:
                return float(text)
            except ValueError:
                return text          # core names the key and says it must be a number
        return text

    def apply(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Write the form's values into ``raw`` (a config dict) and return it."""
        for key in self.fields:
            set_nested(raw, key, self.value(key))
        return raw

    def texts(self) -> dict[str, Any]:
        return {key: self.value(key) for key in self.fields}

"""The Train step's view of a run: the progress bar with ETA and throughput, one status line, the note when the
validation frames are the training frames, the live curves (losses, λ, mean |γ|, validation PSNR with the
reference lines) and the log. It renders the engine's events (``show``), which arrive as queued signals.
"""
from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTextCharFormat
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QProgressBar, QSplitter, QVBoxLayout, QWidget

from core.events import Event, Log, Progress, SparsityUpdate, StageFinished, StageStarted, Validation

from ..formatting import seconds
from ..train_references import ValReference, on_training_frames
from ..widgets.train_curves import PSNR_TITLE, TrainingCurves

TRAINING_FRAMES_NOTE = "on the training frames"


class TrainRunView(QWidget):
    """``progress``, ``status``, ``val_note``, ``curves`` and ``log``, top to bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.progress.setValue(0)
        self.status = QLabel("No run yet.")
        self.status.setWordWrap(True)
        self.val_note = QLabel()
        self.val_note.setWordWrap(True)
        self.val_note.setStyleSheet("color: #b36b00;")
        self.val_note.setVisible(False)
        self.curves = TrainingCurves()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self._offsets: dict[str, int] = {}
        self._next_offset = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.val_note)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.log)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout.addWidget(split, 1)

    def start(self, sir: bool) -> None:
        """A run starts: empty curves (the SIR ones when it has a SIR stage), stages counted from zero."""
        self.curves.clear_all(sir=sir)
        self._offsets, self._next_offset = {}, 0

    def show_val_note(self, cfg) -> None:
        """Say so when validation runs on the training frames (quick.yaml: the demo clip is both)."""
        same = on_training_frames(cfg)
        self.val_note.setVisible(same)
        self.val_note.setText("Note: the validation frames are the training frames (the validation clip is the "
                              "training clip): validation PSNR here is measured on the clip the run trains on; a "
                              "held-out clip scores less." if same else "")
        refs = self.curves.references()
        self.curves.set_references(refs, f"{PSNR_TITLE} ({TRAINING_FRAMES_NOTE})" if same else PSNR_TITLE)

    def show(self, event: Event, shared: tuple[str, ...] = ()) -> None:
        """One engine event on the bar, the curves, the status line or the log; ``shared``: the app's other jobs
        that ran since the last progress, so its speed is not this machine's alone."""
        if isinstance(event, ValReference):
            self._show_references(event)
        elif isinstance(event, StageStarted):
            self._offsets[event.stage] = self._next_offset
            self.curves.mark_stage(self._next_offset + event.start, event.stage)
            self._next_offset += event.total
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.start)
            self.progress.setFormat(f"{event.stage} %v/%m")
            self.append_log(f"[{event.stage}] started at iteration {event.start} of {event.total}", "info")
        elif isinstance(event, Progress):
            x = self._offsets.get(event.stage, 0) + event.iteration
            for name, value in event.losses.items():
                self.curves.add(f"loss/{name}", x, value)
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.iteration)
            timed = event.throughput or event.seconds_per_iter
            alone = f" · times not comparable: {', '.join(shared)} ran meanwhile" if shared and timed else ""
            speed = f" · {event.throughput:.1f} frames/s" + (" (shared)" if alone else "") if event.throughput else ""
            per_iter = f" · {event.seconds_per_iter:.2f} s/it" if event.seconds_per_iter else ""
            self.progress.setFormat(f"{event.stage} %v/%m · ETA {seconds(event.eta_seconds)}{speed}")
            losses = ", ".join(f"{k} {v:.4g}" for k, v in event.losses.items())
            self.status.setText(f"{event.stage}: iteration {event.iteration}/{event.total}{per_iter} · {losses}"
                                + alone)
        elif isinstance(event, SparsityUpdate):
            x = self._offsets.get(event.stage, 0) + event.iteration
            self.curves.add("lambda", x, event.mean_lambda)
            self.curves.add("gamma/pruned", x, event.gamma_pruned)
            self.curves.add("gamma/kept", x, event.gamma_kept)
        elif isinstance(event, Validation):
            self.curves.add(f"psnr/{event.stage}", self._offsets.get(event.stage, 0) + event.iteration, event.psnr)
            self.append_log(f"[{event.stage}] validation PSNR {event.psnr:.2f} dB at iteration {event.iteration}",
                            "info")
        elif isinstance(event, Log):
            self.append_log(event.message, event.level)
        elif isinstance(event, StageFinished):
            outputs = ", ".join(f"{k}: {v}" for k, v in event.outputs.items())
            self.append_log(f"[{event.stage}] finished ({outputs})", "info")

    def _show_references(self, ref: ValReference) -> None:
        lines = {"bicubic": ref.bicubic}
        if ref.start is not None:
            lines[ref.start_label] = ref.start
        title = f"{PSNR_TITLE} ({TRAINING_FRAMES_NOTE})" if ref.on_training_frames else PSNR_TITLE
        self.curves.set_references(lines, title)
        where = f"{ref.frames} validation frames" + (f" of {ref.clips} clips" if ref.clips > 1 else "")
        start = f"{ref.start_label} {ref.start:.2f} dB, " if ref.start is not None else ""
        self.append_log(f"reference on {where}: {start}bicubic {ref.bicubic:.2f} dB"
                        + (f" ({ref.skipped})" if ref.skipped else ""), "info")

    def append_log(self, message: str, level: str) -> None:
        fmt = QTextCharFormat()
        fmt.setForeground(QColor({"warning": "#b36b00", "error": "#b00020"}.get(level, "#202020")))
        cursor = self.log.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(time.strftime("%H:%M:%S ") + message + "\n", fmt)
        self.log.setTextCursor(cursor)
        self.log.ensureCursorVisible()

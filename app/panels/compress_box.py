"""The Export step's one path to a fast file: ``compress`` on the loaded network with the current clip as footage.

The same recipe as ``main.py compress`` (``core.compress``): plan for the asked speed on this machine, cut,
reconstruct on the clip's first frames, quantize, time, judge on its later frames; the file, its report and its
picture are written under the output rule. This widget only collects the request and shows what came back; the
work runs in a child process (``app.compress_job``), so the window never waits for a trace.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QWidget)

from core.compress.footage import DEFAULT_CALIB_FRAMES, DEFAULT_JUDGED_FRAMES
from core.compress.run import CompressRequest
from core.errors import UserError
from core.events import Log, Progress

from ..alone import WaitingFor
from ..compress_job import CompressOutcome, check_footage, run_compress
from ..dialogs import show_error
from ..state import AppState
from ..workers import Job


class CompressBox(QGroupBox):
    """Speed-up, output file, Compress/Cancel, progress and the outcome in a few lines."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("One fast file for this clip (compress)", parent)
        self.state = state
        self.speedup = QDoubleSpinBox()
        self.speedup.setRange(1.1, 50.0)
        self.speedup.setSingleStep(0.5)
        self.speedup.setValue(4.0)
        self.speedup.setSuffix(" × the dense network")
        self.out = QLineEdit(str(Path.cwd() / "exports" / "compressed.onnx"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.button = QPushButton("Compress")
        self.button.clicked.connect(self.start)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self._cancel)
        self.progress = QProgressBar()
        self.status = QLabel("Plans for this machine, cuts, reconstructs on the clip's first "
                             f"{DEFAULT_CALIB_FRAMES} frames, quantizes to int8, times the file and judges it on "
                             f"the {DEFAULT_JUDGED_FRAMES} frames after them (no GT read).")
        self.status.setWordWrap(True)
        self.job: Job | None = None
        form = QFormLayout(self)
        form.addRow("Speed-up", self.speedup)
        row = QHBoxLayout()
        row.addWidget(self.out, 1)
        row.addWidget(browse)
        form.addRow("ONNX file", row)
        run = QHBoxLayout()
        run.addWidget(self.button)
        run.addWidget(self.cancel)
        run.addWidget(self.progress, 1)
        form.addRow(run)
        form.addRow(self.status)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Compressed ONNX file", self.out.text(), "ONNX (*.onnx)")
        if path:
            self.out.setText(path)

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling: stopping the compress process …")

    def request(self) -> CompressRequest | None:
        """The request for the loaded network and current clip, or None (with a message) when one is missing."""
        s = self.state
        if s.model is None or s.clip is None:
            self.status.setText("Open a network (Model step) and a clip first.")
            return None
        return CompressRequest(str(s.model.path), (str(s.clip.source),), self.out.text().strip(),
                               speedup=self.speedup.value())

    def start(self) -> Job | None:
        req = self.request()
        if req is None:
            return None
        clip = self.state.clip
        try:
            check_footage(clip, self.state.model.spec.num_feat)   # the same one-line refusals as the CLI's
        except UserError as exc:
            show_error(self, "Cannot compress on this clip", exc)
            return None
        self.button.setEnabled(False)
        self.cancel.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText("Starting…")
        self.job = self.state.runner.start(
            "compress", lambda job: run_compress(job, req, clip), on_success=self._done,
            on_failure=self._failed, on_event=self._event, on_cancel=lambda: self._ended("Cancelled: nothing written."))
        return self.job

    def _event(self, event) -> None:
        if isinstance(event, Log):
            self.status.setText(event.message)
        elif isinstance(event, Progress):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.iteration)
        elif isinstance(event, WaitingFor) and event.jobs:
            self.status.setText(f"Waiting: {event.text()}.")

    def _done(self, outcome: CompressOutcome) -> None:
        text = outcome.result.summary()
        if outcome.contended:
            text += (f"\nTimed while {', '.join(outcome.contended)} also ran: the speeds above are not this machine's "
                     "alone; compress again with nothing else running to trust them.")
        self._ended(text)

    def _failed(self, exc: BaseException, trace: str) -> None:
        self._ended("Failed: nothing written.")
        show_error(self, "Compress failed", exc, trace)

    def _ended(self, text: str) -> None:
        self.job = None
        self.button.setEnabled(True)
        self.cancel.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status.setText(text)

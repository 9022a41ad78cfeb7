"""The Prune step's job: cut the dense network to the plan shown and, by default, reconstruct the cut on the current
clip (``app.recovery_job``), with progress and Cancel; the result becomes the pruned network Compare and Export use.

The raw cut of a recurrent VSR network is noise, so reconstruction is on by default (minutes on the full
network); a slider move leaves an earlier reconstruction stale, and it is never re-run on a move.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QProgressBar, QPushButton, QWidget

from core.errors import UserError

from ..formatting import seconds
from ..recovery_job import cut_pruned, is_reconstruct_progress
from ..state import AppState
from ..workers import Job


class CutControls(QWidget):
    """“Reconstruct at the cut”, the button that cuts, Cancel and the job's progress, in one row."""

    changed = Signal()              # a job started or ended, or the reconstruction was switched: say what the
                                    # plan's network is again

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.reconstruct_box = QCheckBox("Reconstruct at the cut (calibrate on the current clip)")
        self.reconstruct_box.setChecked(True)
        self.reconstruct_box.setToolTip(
            "Refit the cut network so its activations reproduce the dense network's on the current clip's LR "
            "frames (least squares, no GT needed; minutes on the full network). Without it, the cut of a "
            "recurrent network outputs noise. Compare and Export use the reconstructed network.")
        self.apply_button = QPushButton()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.job: Job | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.reconstruct_box)
        row.addWidget(self.apply_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 4)
        row.addStretch(1)
        self.cancel_button.clicked.connect(self.cancel)
        self.reconstruct_box.toggled.connect(self._reconstruct_toggled)
        self._reconstruct_toggled(self.reconstruct_box.isChecked())

    def _reconstruct_toggled(self, on: bool) -> None:
        self.state.current.reconstruct_at_cut = on
        self.apply_button.setText("Prune + reconstruct" if on else "Prune now (zero-shot)")
        self.apply_button.setToolTip(
            "Cut the network to this plan, then reconstruct it on the current clip (progress and Cancel here); "
            "Compare and Export use the result" if on else
            "Cut the network to this plan without reconstruction or training: the raw cut (far below dense, often noise; "
            "SIR in the Train step, or reconstruction, recovers it)")
        self.changed.emit()

    def apply_plan(self, on_event: Callable[[object], None]) -> Job | None:
        """Cut the dense network to the current plan (and reconstruct it) in the background; the result becomes
        the pruned network Compare and Export use. ``on_event``: the job's events (``show_event`` by default)."""
        s, plan, loaded, clip = self.state, self.state.plan, self.state.model, self.state.clip
        if plan is None or loaded is None or self.job is not None:
            return None
        reconstruct = self.reconstruct_box.isChecked()
        if reconstruct and clip is None:
            s.error.emit("Cannot reconstruct", UserError(
                "reconstruction calibrates on the current clip's LR frames: open a clip first (Compare step or "
                "File menu), or untick “Reconstruct at the cut”"), "")
            return None
        current, settings = s.current, s.current.reconstruct_settings
        running = reconstruct and current.recovery_for(loaded.model, plan) is None

        def done(out) -> None:
            pruned, recovery = out
            if s.model is not loaded:          # the dense model changed meanwhile: this cut belongs to the old one
                s.message.emit("the cut was discarded: another dense model was loaded meanwhile")
                return
            current.keep(recovery, loaded.model)
            s.set_pruned(pruned)
            if recovery is not None:
                r = recovery.report
                s.message.emit(f"reconstructed: {r.psnr_raw:.1f} → {r.psnr_after:.1f} dB vs dense, first {r.frames} "
                               "frames")

        self.apply_button.setEnabled(False)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, 0)          # busy until the first refit reports (the traces come first)
            self.progress.setFormat("tracing the dense and the cut network …")
            self.progress.setVisible(True)
        self.job = s.runner.start(
            "reconstruct" if running else "prune",
            lambda job: cut_pruned(job, current, loaded.model, plan, clip, settings, reconstruct),
            on_success=done, on_event=on_event,
            on_failure=lambda e, t: s.error.emit("Reconstruction failed" if running else "Pruning failed", e, t),
            on_cancel=lambda: s.message.emit("reconstruction cancelled: the pruned network is unchanged"),
            on_finish=self._job_finished)
        self.changed.emit()
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.progress.setFormat("cancelling …")

    def show_event(self, event: object) -> None:
        if is_reconstruct_progress(event) and not (self.job is not None and self.job.control.cancelled):
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.iteration)
            self.progress.setFormat(f"reconstructing: layer %v of %m · ETA {seconds(event.eta_seconds)}")

    def _job_finished(self) -> None:
        self.job = None
        self.apply_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setVisible(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.changed.emit()

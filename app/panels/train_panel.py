"""Step 3 — Train: SIR or the prune stage (the cut, reconstructed), and finetuning, run by core in a worker thread;
it opens on quick.yaml (a run that finishes in minutes on a CPU), with the paper's settings one click away.

The validation chart has reference lines for the network the run starts from (the dense one) and for bicubic
upscaling on the same validation frames, computed once in the job before the run (``train_references``), and
says so when the validation frames are the training frames.

The engine's events arrive as queued signals: the progress bar, the curves and the log follow the run while
the window stays responsive. Pause/Cancel go through the run's ``RunControl``; a cancelled or failed run keeps
its state in the run folder and can be resumed later with “Resume run…”.

This module is the run's controls and the job's wiring; the settings column is ``train_settings``, the view of a
run (progress, curves, log) ``train_run_view``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from core.errors import UserError
from core.events import Cancelled, CheckpointSaved, Event, Log, Progress, StageFinished
from core.train.config_load import load_config
from core.train.pipeline import TrainResult, run_training
from core.train.runfolder import RUN_CONFIG

from ..alone import throughput_shared
from ..dialogs import show_error
from ..state import AppState
from ..train_cut import reusable_cut
from ..train_form import fresh_run_dir
from ..train_references import ValReference, reference_key, validation_references
from ..widgets.elided_label import ElidedLabel
from ..workers import Job
from .train_run_view import TrainRunView
from .train_settings import QUICK_CONFIG, TrainSettings


class TrainPanel(QWidget):
    prunedModelReady = Signal(str)         # path of the run's final pruned model file
    runEnded = Signal(str)                 # 'finished' | 'cancelled' | 'failed', once the worker has stopped

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job: Job | None = None
        self.last_checkpoint: str | None = None
        self.result: TrainResult | None = None
        self._outcome = "failed"               # until the worker says otherwise

        self.settings_column = TrainSettings(state)
        self.run_view = TrainRunView()
        c, v = self.settings_column, self.run_view
        self.form, self.stage_boxes, self.follow_prune, self.config_label = c.form, c.stage_boxes, \
            c.follow_prune, c.config_label
        self.progress, self.status, self.val_note, self.curves, self.log = v.progress, v.status, v.val_note, \
            v.curves, v.log
        self._references: dict[tuple, ValReference | None] = {}     # computed once per start network and val set
        self.run_dir = ElidedLabel()
        self.run_dir_path = fresh_run_dir()
        self._active_run_dir: Path | None = None    # the folder of the run started last
        self._resumed = False
        run_dir_button = QPushButton("Run folder…")
        run_dir_button.clicked.connect(self._choose_run_dir)
        self.start_button, self.pause_button = QPushButton("Start"), QPushButton("Pause")
        self.cancel_button, self.resume_button = QPushButton("Cancel"), QPushButton("Resume run…")
        self.start_button.setToolTip("Run the ticked stages in the run folder (Ctrl+R)")
        self.resume_button.setToolTip("Continue a cancelled or failed run from its run folder")
        self._build(run_dir_button)

        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self._choose_resume)
        c.configLoaded.connect(self._show_val_note)
        self.load_config_file(QUICK_CONFIG if QUICK_CONFIG.is_file() else None, default=True)
        self._set_running(False)

    def _build(self, run_dir_button: QPushButton) -> None:
        controls = QHBoxLayout()
        for w in (self.start_button, self.pause_button, self.cancel_button, self.resume_button, run_dir_button):
            controls.addWidget(w)
        controls.addWidget(self.run_dir, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.run_view, 1)
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.settings_column)
        outer.addWidget(right)
        outer.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(outer)
        self._show_run_dir()

    # -- configuration (the settings column) ------------------------------------------------------------
    @property
    def config_file(self) -> Path | None:
        return self.settings_column.config_file

    def load_config_file(self, path: str | Path | None, default: bool = False) -> None:
        self.settings_column.load_config_file(path, default)

    def build_config(self):
        """The config the form describes, validated by core (raises ConfigError naming the bad key)."""
        return self.settings_column.build_config()

    def _show_val_note(self, cfg=None) -> None:
        if cfg is None:
            try:
                cfg = self.build_config()
            except UserError:
                return
        self.run_view.show_val_note(cfg)

    def _choose_run_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder", str(self.run_dir_path.parent))
        if path:
            self.set_run_dir(path)

    def set_run_dir(self, path: str | Path) -> None:
        self.run_dir_path = Path(path)
        self._show_run_dir()

    def _show_run_dir(self) -> None:
        self.run_dir.setText(f"run folder: {self.run_dir_path}")

    # -- running --------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        return self.job is not None

    def start(self, resume: bool = False) -> Job | None:
        """Validate the settings and start the run in a worker thread."""
        if self.is_running():
            return None
        try:
            cfg = load_config(self.run_dir_path / RUN_CONFIG) if resume else self.build_config()
        except UserError as exc:
            show_error(self, "Invalid training settings", exc)
            return None
        run_dir = self._active_run_dir = self.run_dir_path
        self._resumed = resume
        self.run_view.start(sir="sir" in cfg.stages)
        self.last_checkpoint, self.result, self._outcome = None, None, "failed"
        self.run_view.append_log(f"{'resuming' if resume else 'starting'} {', '.join(cfg.stages)} in {run_dir}",
                                 "info")
        self.status.setText(f"Running {' → '.join(cfg.stages)} in {run_dir} …")
        self._show_val_note(cfg)
        cache = self._references
        given = None if resume else reusable_cut(self.state, cfg, self.follow_prune.isChecked())
        if given is not None:
            self.run_view.append_log(f"the prune stage keeps the cut the Prune step reconstructed on {given[1]} "
                                     "(not reconstructed again)", "info")

        def work(job: Job):
            self._reference_lines(job, cfg, cache)
            job.control.checkpoint()
            return run_training(cfg, run_dir, sink=job.emit_event, control=job.control, resume=resume,
                                cut=given[0] if given is not None else None)

        self.progress.setRange(0, 0)             # busy until the run's first stage starts
        self.progress.setFormat("reading the validation frames, scoring the references …")
        self.job = self.state.runner.start(
            "train", work, on_success=self._succeeded, on_failure=self._failed, on_event=self.handle_event,
            on_cancel=self._cancelled, on_finish=self._job_finished)
        self.job.timing = "timing"               # its speed is shown: the runner names jobs started meanwhile
        self._set_running(True)
        return self.job

    @staticmethod
    def _reference_lines(job: Job, cfg, cache: dict) -> None:
        """Worker: the validation chart's reference lines (once per start network and validation set). Any
        failure only leaves the lines out: the run itself checks its inputs and says what is wrong."""
        from core.device import resolve_device

        try:
            device = resolve_device(cfg.runtime.device)
            key = reference_key(cfg, str(device))
            if key not in cache:
                cache[key] = validation_references(cfg, device, job.control.checkpoint)
            if cache[key] is not None:
                job.emit_event(cache[key])
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a reference line is never worth a failed start
            job.emit_event(Log(f"no reference lines on the validation chart: {exc}", "info"))

    def resume_run(self, run_dir: str | Path) -> Job | None:
        """Continue the run in ``run_dir`` from its saved states (its own config.yaml)."""
        self.set_run_dir(run_dir)
        return self.start(resume=True)

    def _choose_resume(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Resume which run folder?", str(self.run_dir_path.parent))
        if path:
            self.resume_run(path)

    def toggle_pause(self) -> None:
        if self.job is None:
            return
        if self.job.control.paused:
            self.job.control.resume()
            self.pause_button.setText("Pause")
            self.run_view.append_log("resumed", "info")
        else:
            self.job.control.pause()
            self.pause_button.setText("Resume")
            self.run_view.append_log("paused (the current iteration finishes first)", "info")

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.status.setText("Cancelling: the run stops at its next check (seconds) and saves its state if it "
                                "has one …")

    def _job_finished(self) -> None:
        self._set_running(False)
        if self.run_dir_path == self._active_run_dir:
            # The next Start gets a folder of its own (shown in the header); the ended run's folder stays
            # reachable through “Resume run…”.
            self.set_run_dir(fresh_run_dir(after=self._active_run_dir))
        self.runEnded.emit(self._outcome)

    def _set_running(self, running: bool) -> None:
        if not running:
            self.job = None
            if self.progress.maximum() == 0:        # ended before its first stage: no busy bar left behind
                self.progress.setRange(0, 1)
                self.progress.setValue(0)
        self.start_button.setEnabled(not running)
        self.resume_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.form.setEnabled(not running)
        self.settings_column.running = running

    # -- engine events (GUI thread) -------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        if isinstance(event, CheckpointSaved):
            self.last_checkpoint = event.path
        elif isinstance(event, StageFinished):
            self.last_checkpoint = event.outputs.get("state", self.last_checkpoint)
        shared = throughput_shared(self.job) if isinstance(event, Progress) and self.job is not None else ()
        self.run_view.show(event, shared)

    def _succeeded(self, result: TrainResult) -> None:
        self.result = result
        self.last_checkpoint = str(result.last_checkpoint) if result.last_checkpoint else self.last_checkpoint
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("finished")
        self.run_view.append_log(f"run finished; pruned model: {result.pruned_model}; report: {result.report}", "info")
        self.status.setText(f"Finished. Pruned model {result.pruned_model}")
        if result.pruned_model is not None:
            self.prunedModelReady.emit(str(result.pruned_model))
        self._outcome = "finished"

    def _cancelled(self) -> None:
        self.progress.setFormat("cancelled")
        if self.last_checkpoint is None:
            text = (f"Cancelled before any state was saved in {self._active_run_dir}: there is nothing to resume; "
                    "Start runs again (in a new folder).")
        else:
            text = f"Cancelled. Last state: {self.last_checkpoint} — “Resume run…” continues it."
        self.status.setText(text)
        self.run_view.append_log(text, "warning")
        self._outcome = "cancelled"

    def _failed(self, exc: BaseException, trace: str) -> None:
        self.progress.setFormat("failed")
        self.status.setText(f"Failed: {exc}")
        self.run_view.append_log(f"run failed: {type(exc).__name__}: {exc}", "error")
        self._outcome = "failed"
        if self.last_checkpoint is None and not self._resumed:   # refused before any saved state: nothing ran
            extra = (f"Run folder: {self._active_run_dir}\nNothing was trained (no state was saved). Fix the "
                     "settings and press Start; the next run gets a new folder.")
        else:
            extra = (f"Run folder: {self._active_run_dir}\nLast checkpoint: {self.last_checkpoint}\n"
                     "The run can be continued with “Resume run…”.")
        show_error(self, "Training failed", exc, trace, extra=extra)

    # -- session support ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {**self.settings_column.settings(), "run_dir": str(self.run_dir_path)}

    def restore(self, data: dict[str, Any]) -> None:
        if not data:
            return
        self.settings_column.restore(data)
        if data.get("run_dir"):
            self.set_run_dir(data["run_dir"])

"""Step 3 — Train: SIR or the prune stage (the cut, reconstructed), and finetuning, run by core in a worker thread;
it opens on quick.yaml (a run that finishes in minutes on a CPU), with the paper's settings one click away.

The validation chart has reference lines for the network the run starts from (the dense one) and for bicubic
upscaling on the same validation frames, computed once in the job before the run (``train_references``), and
says so when the validation frames are the training frames.

The engine's events arrive as queued signals: the progress bar, the curves and the log follow the run while
the window stays responsive. Pause/Cancel go through the run's ``RunControl``; a cancelled or failed run keeps
its state in the run folder and can be resumed later with “Resume run…”.
"""
from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget)

from core.errors import UserError
from core.events import (Cancelled, CheckpointSaved, Event, Log, Progress, SparsityUpdate, StageFinished, StageStarted,
                         Validation)
from core.ssl.units import stream_layer_names
from core.train.config import STAGES, default_config, plan_overrides
from core.train.config_load import config_from_dict, load_config
from core.train.pipeline import TrainResult, run_training
from core.train.runfolder import RUN_CONFIG

from ..dialogs import show_error
from ..formatting import seconds
from ..resources import RESOURCES
from ..state import AppState
from ..train_references import ValReference, on_training_frames, reference_key, validation_references
from ..train_cut import reusable_cut
from ..train_form import SECTIONS, fresh_run_dir
from ..widgets.config_form import ConfigForm, set_nested
from ..widgets.elided_label import ElidedLabel
from ..widgets.train_curves import PSNR_TITLE, TrainingCurves
from ..workers import Job

QUICK_CONFIG = RESOURCES / "configs" / "quick.yaml"      # the quick start: runs in minutes on a CPU
TRAINING_FRAMES_NOTE = "on the training frames"

class TrainPanel(QWidget):
    prunedModelReady = Signal(str)         # path of the run's final pruned model file
    runEnded = Signal(str)                 # 'finished' | 'cancelled' | 'failed', once the worker has stopped

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job: Job | None = None
        self.config_file: Path | None = None
        self.base: dict[str, Any] = default_config().to_dict()
        self.last_checkpoint: str | None = None
        self.result: TrainResult | None = None
        self._outcome = "failed"               # until the worker says otherwise
        self._offsets: dict[str, int] = {}
        self._next_offset = 0

        self.form = ConfigForm(SECTIONS)
        self.stage_boxes = {s: QCheckBox(s) for s in STAGES}
        self.follow_prune = QCheckBox("Plan follows the Prune step")
        self.follow_prune.setToolTip("Ratio, criterion, locks, caps and widths come from the Prune step's plan")
        self.follow_prune.setChecked(True)
        self.config_label = QLabel("Paper defaults")
        self.config_label.setWordWrap(True)
        self._default_config = False           # the config the step opened on (not chosen): follows the model
        load_button, defaults_button = QPushButton("Load config…"), QPushButton("Paper defaults")
        load_button.clicked.connect(self._choose_config)
        defaults_button.clicked.connect(lambda: self.load_config_file(None))
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
        self._references: dict[tuple, ValReference | None] = {}     # computed once per start network and val set
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self._build(load_button, defaults_button, run_dir_button)

        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self._choose_resume)
        state.modelChanged.connect(self._model_changed)
        state.planChanged.connect(self._plan_changed)
        self.load_config_file(QUICK_CONFIG if QUICK_CONFIG.is_file() else None, default=True)
        self._set_running(False)

    def _build(self, load_button: QPushButton, defaults_button: QPushButton, run_dir_button: QPushButton) -> None:
        settings = QWidget()
        column = QVBoxLayout(settings)
        config_row = QHBoxLayout()
        for w in (load_button, defaults_button):
            config_row.addWidget(w)
        column.addLayout(config_row)
        column.addWidget(self.config_label)
        stages = QGroupBox("Stages")
        stage_row = QHBoxLayout(stages)
        for box in self.stage_boxes.values():
            stage_row.addWidget(box)
        column.addWidget(stages)
        for box in self.form.boxes:
            column.addWidget(box)
        column.addWidget(self.follow_prune)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(400)         # the widest form (Dataset) and the scroll bar, no horizontal scrolling

        controls = QHBoxLayout()
        for w in (self.start_button, self.pause_button, self.cancel_button, self.resume_button, run_dir_button):
            controls.addWidget(w)
        controls.addWidget(self.run_dir, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(controls)
        right_layout.addWidget(self.progress)
        right_layout.addWidget(self.status)
        right_layout.addWidget(self.val_note)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.curves)
        split.addWidget(self.log)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        right_layout.addWidget(split, 1)
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(scroll)
        outer.addWidget(right)
        outer.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(outer)
        self._show_run_dir()

    # -- configuration --------------------------------------------------------------------------------
    def load_config_file(self, path: str | Path | None, default: bool = False) -> None:
        """Fill the form from a YAML config (None: the paper's defaults). The current model stays the start with
        the paper's defaults and with the config the step opened on (``default``); a config the user chose keeps
        its own ``model.weights``."""
        try:
            cfg = load_config(path)
        except UserError as exc:
            show_error(self, "Cannot read config", exc)
            return
        self.config_file = Path(path) if path else None
        self._default_config = default
        self.base = cfg.to_dict()
        self.form.set_values(self.base)
        for stage, box in self.stage_boxes.items():
            box.setChecked(stage in cfg.stages)
        if self.config_file is None:
            text = "Config: the paper's defaults (REDS, hundreds of thousands of iterations: days on a GPU)"
        elif default and self.config_file.name == QUICK_CONFIG.name:
            text = (f"Config: {self.config_file.name} — the quick start ({' → '.join(cfg.stages)} on the demo "
                    "clip, minutes on a CPU); “Paper defaults” for the paper's schedule")
        else:
            text = f"Config: {self.config_file}"
        self.config_label.setText(text)
        self.config_label.setToolTip(str(self.config_file) if self.config_file else "")
        self._model_changed()
        self._plan_changed()
        self._show_val_note(cfg)

    def _show_val_note(self, cfg=None) -> None:
        """Say so when validation runs on the training frames (quick.yaml: the demo clip is both)."""
        if cfg is None:
            try:
                cfg = self.build_config()
            except UserError:
                return
        same = on_training_frames(cfg)
        self.val_note.setVisible(same)
        self.val_note.setText("Note: the validation frames are the training frames (the validation clip is the "
                              "training clip): validation PSNR here is measured on the clip the run trains on; a "
                              "held-out clip scores less." if same else "")
        refs = self.curves.references()
        self.curves.set_references(refs, f"{PSNR_TITLE} ({TRAINING_FRAMES_NOTE})" if same else PSNR_TITLE)

    def build_config(self):
        """The config the form describes, validated by core (raises ConfigError naming the bad key)."""
        raw = self.form.apply(copy.deepcopy(self.base))
        raw["stages"] = [s for s, box in self.stage_boxes.items() if box.isChecked()]
        return config_from_dict(raw)

    def _model_changed(self) -> None:
        if self.state.model is not None and (self.config_file is None or self._default_config):
            self.form.set_value("model.weights", str(self.state.model.path))

    def _plan_changed(self) -> None:
        """Copy the whole plan (ratio, criterion, floor, widths, locks, caps) into ``sir.*``, not just the ratio."""
        plan = self.state.plan
        if plan is None or plan.settings is None or not self.follow_prune.isChecked() or self.is_running():
            return
        st = plan.settings
        stream = stream_layer_names(plan.spec_before)
        kept_stream = bool(stream) and set(stream) <= set(st.locks)
        locks = [n for n in st.locks if not (kept_stream and n in stream)]
        # A kept stream travels as the form's tick, not as 120 names: the config expands it back to the same locks.
        values = {**plan_overrides(st), "sir.keep_stream": kept_stream, "sir.lock": locks}
        for key, value in values.items():
            if key in self.form.fields:
                self.form.set_value(key, value)
            else:
                set_nested(self.base, key, copy.deepcopy(value))
        extras = [f"criterion {st.criterion}"] + (["the hidden stream kept whole"] if kept_stream else []) + (
            [f"locked: {', '.join(locks)}"] if locks else []) + (
            [f"capped: {', '.join(f'{k} ≤ {v:g}' for k, v in st.caps)}"] if st.caps else []) + (
            [f"{len(st.widths)} layer widths from a latency target"] if st.widths else [])
        self.follow_prune.setToolTip("The cut (SIR or the prune stage) removes exactly this plan's units: "
                                     + "; ".join(extras))

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", str(Path.cwd()), "YAML (*.yaml *.yml)")
        if path:
            self.load_config_file(path)

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
        self.curves.clear_all(sir="sir" in cfg.stages)
        self._offsets, self._next_offset = {}, 0
        self.last_checkpoint, self.result, self._outcome = None, None, "failed"
        self._append_log(f"{'resuming' if resume else 'starting'} {', '.join(cfg.stages)} in {run_dir}", "info")
        self.status.setText(f"Running {' → '.join(cfg.stages)} in {run_dir} …")
        self._show_val_note(cfg)
        cache = self._references
        given = None if resume else reusable_cut(self.state, cfg, self.follow_prune.isChecked())
        if given is not None:
            self._append_log(f"the prune stage keeps the cut the Prune step reconstructed on {given[1]} "
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
            self._append_log("resumed", "info")
        else:
            self.job.control.pause()
            self.pause_button.setText("Resume")
            self._append_log("paused (the current iteration finishes first)", "info")

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

    # -- engine events (GUI thread) -------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        if isinstance(event, ValReference):
            self._show_references(event)
        elif isinstance(event, StageStarted):
            self._offsets[event.stage] = self._next_offset
            self.curves.mark_stage(self._next_offset + event.start, event.stage)
            self._next_offset += event.total
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.start)
            self.progress.setFormat(f"{event.stage} %v/%m")
            self._append_log(f"[{event.stage}] started at iteration {event.start} of {event.total}", "info")
        elif isinstance(event, Progress):
            x = self._offsets.get(event.stage, 0) + event.iteration
            for name, value in event.losses.items():
                self.curves.add(f"loss/{name}", x, value)
            self.progress.setRange(0, max(event.total, 1))
            self.progress.setValue(event.iteration)
            speed = f" · {event.throughput:.1f} frames/s" if event.throughput else ""
            per_iter = f" · {event.seconds_per_iter:.2f} s/it" if event.seconds_per_iter else ""
            self.progress.setFormat(f"{event.stage} %v/%m · ETA {seconds(event.eta_seconds)}{speed}")
            losses = ", ".join(f"{k} {v:.4g}" for k, v in event.losses.items())
            self.status.setText(f"{event.stage}: iteration {event.iteration}/{event.total}{per_iter} · {losses}")
        elif isinstance(event, SparsityUpdate):
            x = self._offsets.get(event.stage, 0) + event.iteration
            self.curves.add("lambda", x, event.mean_lambda)
            self.curves.add("gamma/pruned", x, event.gamma_pruned)
            self.curves.add("gamma/kept", x, event.gamma_kept)
        elif isinstance(event, Validation):
            self.curves.add(f"psnr/{event.stage}", self._offsets.get(event.stage, 0) + event.iteration, event.psnr)
            self._append_log(f"[{event.stage}] validation PSNR {event.psnr:.2f} dB at iteration {event.iteration}",
                             "info")
        elif isinstance(event, CheckpointSaved):
            self.last_checkpoint = event.path
        elif isinstance(event, Log):
            self._append_log(event.message, event.level)
        elif isinstance(event, StageFinished):
            outputs = ", ".join(f"{k}: {v}" for k, v in event.outputs.items())
            self._append_log(f"[{event.stage}] finished ({outputs})", "info")
            self.last_checkpoint = event.outputs.get("state", self.last_checkpoint)

    def _show_references(self, ref: ValReference) -> None:
        lines = {"bicubic": ref.bicubic}
        if ref.start is not None:
            lines[ref.start_label] = ref.start
        title = f"{PSNR_TITLE} ({TRAINING_FRAMES_NOTE})" if ref.on_training_frames else PSNR_TITLE
        self.curves.set_references(lines, title)
        where = f"{ref.frames} validation frames" + (f" of {ref.clips} clips" if ref.clips > 1 else "")
        start = f"{ref.start_label} {ref.start:.2f} dB, " if ref.start is not None else ""
        self._append_log(f"reference on {where}: {start}bicubic {ref.bicubic:.2f} dB"
                         + (f" ({ref.skipped})" if ref.skipped else ""), "info")

    def _append_log(self, message: str, level: str) -> None:
        fmt = QTextCharFormat()
        fmt.setForeground(QColor({"warning": "#b36b00", "error": "#b00020"}.get(level, "#202020")))
        cursor = self.log.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(time.strftime("%H:%M:%S ") + message + "\n", fmt)
        self.log.setTextCursor(cursor)
        self.log.ensureCursorVisible()

    def _succeeded(self, result: TrainResult) -> None:
        self.result = result
        self.last_checkpoint = str(result.last_checkpoint) if result.last_checkpoint else self.last_checkpoint
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat("finished")
        self._append_log(f"run finished; pruned model: {result.pruned_model}; report: {result.report}", "info")
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
        self._append_log(text, "warning")
        self._outcome = "cancelled"

    def _failed(self, exc: BaseException, trace: str) -> None:
        self.progress.setFormat("failed")
        self.status.setText(f"Failed: {exc}")
        self._append_log(f"run failed: {type(exc).__name__}: {exc}", "error")
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
        return {"config_file": str(self.config_file) if self.config_file else None, "values": self.form.texts(),
                "stages": [s for s, b in self.stage_boxes.items() if b.isChecked()],
                "run_dir": str(self.run_dir_path), "follow_prune": self.follow_prune.isChecked()}

    def restore(self, data: dict[str, Any]) -> None:
        if not data:
            return
        self.load_config_file(data.get("config_file"))
        for key, value in (data.get("values") or {}).items():
            if key in self.form.fields:
                self.form.set_value(key, value)
        for stage, box in self.stage_boxes.items():
            box.setChecked(stage in (data.get("stages") or []))
        self.follow_prune.setChecked(bool(data.get("follow_prune", True)))
        if data.get("run_dir"):
            self.set_run_dir(data["run_dir"])

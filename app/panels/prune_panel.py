"""Step 2 — Prune: a global ratio, the criterion, and what that plan does to every layer, live.

Every slider move makes a new Plan (a few ms in core) and redraws the bars, the table's Kept/Ratio columns, the
threshold and the totals. Moves that arrive faster than that are coalesced: only the latest ratio is planned.

The cut itself ("Prune + reconstruct") runs in a job: the raw cut of a recurrent VSR network is noise, so by
default it is reconstructed at the cut on the current clip's LR frames (``core.recover``, minutes on the full
network, with progress and Cancel), and the totals say which of the two the plan's network is. A slider move
leaves an earlier reconstruction stale (said so); it is never re-run on a move.
"""
from __future__ import annotations

import re

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QProgressBar, QPushButton, QSizePolicy, QSplitter, QTableView,
                               QVBoxLayout, QWidget)

from core.errors import UserError
from core.profile.latency import fps
from core.ssl import CRITERIA, DEFAULT_CRITERION, RECOMMENDED_ALIGN, REGISTRY, Plan, make_plan
from core.ssl.settings import LayerOverride
from core.ssl.target import plan_for_latency
from core.ssl.units import stream_layer_names

from ..formatting import count, seconds
from ..recovery_job import cut_pruned, is_reconstruct_progress
from ..state import AppState
from ..workers import Job
from ..widgets.criterion_choice import offer_criteria
from ..widgets.layer_chart import LayerChart
from ..widgets.layer_table import COLUMNS, LayerTableModel
from ..widgets.ratio_control import RatioControl
from ..widgets.score_plot import ScoreDistribution

ALIGN_CHOICES = (1, 4, 8, 16)
WARN = "#b00020"
STALE = "#b36b00"
GOOD = "#1e7b34"
RAW_CUT = "raw cut — not reconstructed: far below dense, often noise"


class PrunePanel(QWidget):
    planUpdated = Signal()              # after chart, table and totals show the latest plan

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.ratio = RatioControl()
        self.criterion = QComboBox()
        for c in REGISTRY.values():
            self.criterion.addItem(c.label, c.name)
            self.criterion.setItemData(self.criterion.count() - 1, c.help, Qt.ItemDataRole.ToolTipRole)
        self.criterion.setCurrentIndex(CRITERIA.index(DEFAULT_CRITERION))
        self.align = QComboBox()
        for a in ALIGN_CHOICES:
            self.align.addItem("any width" if a == 1 else f"multiple of {a}", a)
        self.align.setCurrentIndex(ALIGN_CHOICES.index(RECOMMENDED_ALIGN))
        self.align.setToolTip("Round each layer's kept count to a multiple (narrow odd widths run slowly)")
        self.keep_stream_box = QCheckBox("Keep the stream whole")
        self.keep_stream_box.setToolTip(
            "Lock every layer that cuts the 64-channel hidden stream (the channels each residual block reads and "
            "writes): only the blocks' inner filters and the head are pruned. It recovered better at equal MACs on "
            "every clip measured; the saving stops near 2.4x fewer MACs (prune --keep-stream)")
        self.pin_button = QPushButton("Pin as overlay")
        self.pin_button.setToolTip("Keep this plan drawn as outlines to compare with other ratios or criteria")
        self.clear_pin_button = QPushButton("Clear overlay")
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
        self.chart = LayerChart()
        self.table_model = LayerTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.verticalHeader().setVisible(False)
        # Fixed widths sized once per network: auto-sizing would read every row on every slider move.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        # Sized from a sample of rows: measuring all of full BasicVSR's 1,472 cells froze the window for 0.3 s.
        self.table.horizontalHeader().setResizeContentsPrecision(40)
        self.table_model.modelReset.connect(self._fit_columns)
        self.distribution = ScoreDistribution()
        self.totals = {key: QLabel("–") for key in ("units", "params", "params_spy", "macs", "speedup", "latency",
                                                    "recovery", "notes")}
        self.measure_button = QPushButton("Measure this device")
        self.measure_button.setToolTip("Time each layer kind and width on this CPU at the clip's size (once, "
                                       "cached): predicted ms per frame for every plan, and latency targets")
        self.target = QDoubleSpinBox()
        self.target.setRange(1.0, 1e6)
        self.target.setDecimals(0)
        self.target.setSuffix(" ms/frame")
        self.target.setValue(1000.0)
        self.target.setToolTip("Plan the widths that run at this time per frame on this device, losing the "
                               "least score (needs the device measured)")
        self.target_button = QPushButton("Plan for target")
        self._target_ms: float | None = None      # set while the plan shown was made for a latency target
        self._widths: dict[str, int] | None = None  # that plan's widths (kept when no latency table is loaded)
        self.latency_note = QLabel()          # what the predicted time covers, a row of its own (full width)
        self.latency_note.setWordWrap(True)
        self.latency_note.setStyleSheet("color: #555555;")
        self.latency_note.setVisible(False)
        self.latency_note.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        for key in ("notes", "recovery", "latency"):
            self.totals[key].setWordWrap(True)
            # A wrapped note needs its lines (a splitter squeezed it to one clipped line), and no more: extra
            # height goes below the rows, not between them.
            self.totals[key].setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.empty = QLabel("Open a dense BasicVSR checkpoint in the Model step to plan its pruning.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._build()

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.replan)
        self.ratio.ratioChanged.connect(self._schedule)
        self.align.currentIndexChanged.connect(self._schedule)
        self.table_model.overridesChanged.connect(self._schedule)
        self.table_model.overridesChanged.connect(self._show_keep_stream)
        self.keep_stream_box.toggled.connect(self._keep_stream_toggled)
        self.criterion.currentIndexChanged.connect(self._criterion_changed)
        self.state.scoresChanged.connect(self._criterion_changed)
        self.pin_button.clicked.connect(lambda: self.chart.set_reference(self.state.plan))
        self.clear_pin_button.clicked.connect(lambda: self.chart.set_reference(None))
        self.apply_button.clicked.connect(self.apply_plan)
        self.cancel_button.clicked.connect(self.cancel)
        self.reconstruct_box.toggled.connect(self._reconstruct_toggled)
        state.current.recoveryChanged.connect(self._show_recovery)
        self.measure_button.clicked.connect(lambda: self._load_latency(measure=True))
        self.target_button.clicked.connect(self.plan_for_target)
        self.ratio.ratioChanged.connect(self._leave_target)
        state.current.latencyChanged.connect(self._schedule)
        state.modelChanged.connect(self._model_changed)
        state.clipChanged.connect(self._clip_changed)
        self.ratio.set_value(0.5)
        self._reconstruct_toggled(self.reconstruct_box.isChecked())
        self._model_changed()

    def _build(self) -> None:
        controls = QHBoxLayout()
        controls.addWidget(self.ratio, 3)
        controls.addWidget(QLabel("Criterion"))
        controls.addWidget(self.criterion)
        controls.addWidget(QLabel("Widths"))
        controls.addWidget(self.align)
        controls.addWidget(self.keep_stream_box)
        buttons = QHBoxLayout()
        for b in (self.pin_button, self.clear_pin_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("Latency target"))
        buttons.addWidget(self.target)
        buttons.addWidget(self.target_button)
        cut = QHBoxLayout()
        cut.addWidget(self.reconstruct_box)
        cut.addWidget(self.apply_button)
        cut.addWidget(self.cancel_button)
        cut.addWidget(self.progress, 4)
        cut.addStretch(1)

        totals = QGroupBox("Totals (dense → pruned)")
        totals_column = QVBoxLayout(totals)
        form = QFormLayout()
        totals_column.addLayout(form)
        totals_column.addStretch(1)
        form.addRow("Units pruned", self.totals["units"])
        form.addRow("Parameters (no SpyNet)", self.totals["params"])
        form.addRow("Parameters (with SpyNet)", self.totals["params_spy"])
        self._macs_label = QLabel("MACs / frame")
        form.addRow(self._macs_label, self.totals["macs"])
        form.addRow("Estimated speed-up", self.totals["speedup"])
        latency_row = QHBoxLayout()
        latency_row.addWidget(self.totals["latency"], 1)
        latency_row.addWidget(self.measure_button)
        form.addRow("Predicted time / frame", latency_row)
        form.addRow(self.latency_note)
        form.addRow("Network", self.totals["recovery"])
        form.addRow("Notes", self.totals["notes"])
        dist_box = QGroupBox("Score distribution and global threshold")
        QVBoxLayout(dist_box).addWidget(self.distribution)
        self.distribution.setMinimumHeight(130)      # readable axes (a 1280×800 screen squeezed it to a strip)

        # The totals sit beside the chart with the height they need; the distribution shares the bottom row with
        # the layer table (stacked under the totals it was squeezed to a strip on a 1280×800 screen).
        chart_box = QGroupBox("Pruning ratio per layer (hover a bar for details; outlined = pinned overlay)")
        QVBoxLayout(chart_box).addWidget(self.chart)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(chart_box)
        top.addWidget(totals)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 1)
        table_box = QGroupBox("Layers (tick Lock to keep a layer whole; Max ratio caps its pruning)")
        QVBoxLayout(table_box).addWidget(self.table)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(table_box)
        bottom.addWidget(dist_box)
        bottom.setStretchFactor(0, 3)
        bottom.setStretchFactor(1, 2)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([600, 300])
        top.setSizes([900, 460])
        bottom.setSizes([800, 520])

        self.content = QWidget()
        content = QVBoxLayout(self.content)
        content.setContentsMargins(0, 0, 0, 0)
        content.addLayout(controls)
        content.addLayout(buttons)
        content.addLayout(cut)
        content.addWidget(self.splitter, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(self.content)

    # -- reactions ---------------------------------------------------------------------------------------
    def _model_changed(self) -> None:
        has_model = self.state.model is not None
        self.empty.setVisible(not has_model)
        self.content.setVisible(has_model)
        self.chart.set_reference(None)
        self.table_model.set_plan(None)
        self._show_keep_stream()
        self._offer_criteria()
        self._criterion_changed()
        self._load_latency(measure=False)

    def _stream_layers(self) -> list[str]:
        return [] if self.state.model is None else stream_layer_names(self.state.model.model.spec)

    def _keep_stream_toggled(self, keep: bool) -> None:
        """Lock the stream layers in the table (or unlock them): the plan, the project and Train see plain locks."""
        stream = set(self._stream_layers())
        overrides = {k: v for k, v in self.table_model.overrides.items() if k not in stream}
        if keep:
            overrides.update({name: LayerOverride(locked=True) for name in stream})
        self.table_model.set_overrides(overrides)

    def _show_keep_stream(self) -> None:
        """Ticked exactly when every stream layer is locked (a restored project, locks set in the table)."""
        stream = self._stream_layers()
        locked = bool(stream) and all(self.table_model.overrides.get(n, LayerOverride()).locked for n in stream)
        self.keep_stream_box.blockSignals(True)
        self.keep_stream_box.setChecked(locked)
        self.keep_stream_box.blockSignals(False)

    def _offer_criteria(self) -> None:
        offer_criteria(self.criterion, None if self.state.model is None else self.state.model.model)

    def _fit_columns(self) -> None:
        """Columns sized to their contents, the Ratio column to any ratio ('93.8%' was cut to '93.…' when sized on
        a plan whose ratios were shorter)."""
        self.table.resizeColumnsToContents()
        col = COLUMNS.index("Ratio")
        need = self.table.fontMetrics().horizontalAdvance("100.0%") + 16
        if self.table.columnWidth(col) < need:
            self.table.setColumnWidth(col, need)

    def _clip_changed(self) -> None:
        self._load_latency(measure=False)
        self._schedule()

    def _latency_shape(self) -> tuple[tuple[int, int], int, bool] | None:
        loaded = self.state.model
        if loaded is None:
            return None
        return tuple(self.state.frame_size), loaded.spec.num_feat, loaded.spec.bidirectional

    def _load_latency(self, measure: bool) -> None:
        """This device's latency table for the clip's size: the cached one, or measured when asked (seconds)."""
        shape = self._latency_shape()
        current = self.state.current
        if shape is None:
            current.set_latency(None)
            return
        t = current.latency
        if t is not None and (tuple(t.size), t.num_feat, t.bidirectional) == shape and not measure:
            return
        current.set_latency(None)
        if measure:
            self.measure_button.setEnabled(False)
            self.totals["latency"].setText("measuring this device (seconds, once per size) …")
        self.state.runner.start(
            "latency", current.latency_job(*shape, measure=measure),
            on_success=lambda table: current.set_latency(table) if self._latency_shape() == shape else None,
            on_failure=lambda e, t: self.state.error.emit("Latency measurement failed", e, t),
            on_finish=lambda: self.measure_button.setEnabled(True))

    def _criterion_changed(self) -> None:
        self.distribution.set_scores(self.state.scores(self.criterion.currentData()))
        self._schedule()

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def replan(self) -> None:
        """Plan the current ratio now and show it (the coalescing timer calls this)."""
        scores = self.state.scores(self.criterion.currentData())
        if scores is None:
            self.state.set_plan(None)
            if self.state.model is not None and REGISTRY[self.criterion.currentData()].needs_frames:
                self.totals["notes"].setText("measuring the units on the clip …")
            return
        try:
            if self._target_ms is not None and self.state.current.latency is not None:
                plan = plan_for_latency(scores, self.state.current.latency, self._target_ms,
                                        overrides=self.table_model.overrides, frame_size=self.state.frame_size)
                self._widths = dict(plan.settings.widths)
            elif self._widths is not None:
                plan = make_plan(scores, self.ratio.value(), overrides=self.table_model.overrides,
                                 frame_size=self.state.frame_size, widths=self._widths or None)
            else:
                plan = make_plan(scores, self.ratio.value(), align=self.align.currentData(),
                                 overrides=self.table_model.overrides, frame_size=self.state.frame_size)
        except UserError as exc:
            self.totals["notes"].setText(f"<span style='color:#b00'>{exc}</span>")
            return
        self.state.set_plan(plan, self._target_ms)
        self.chart.set_plan(plan)
        self.table_model.set_plan(plan)
        self.distribution.set_threshold(plan.threshold)
        self._show_totals(plan)
        self.planUpdated.emit()

    def _show_totals(self, plan: Plan) -> None:
        b, a = plan.before, plan.after
        h, w = plan.frame_size
        self.totals["units"].setText(f"{plan.units_pruned} of {plan.units_total} ({plan.achieved_ratio:.1%})")
        self.totals["params"].setText(f"{count(b.params)} → {count(a.params)}  (×{b.params / a.params:.2f} smaller)")
        self.totals["params_spy"].setText(f"{count(b.params_with_spynet)} → {count(a.params_with_spynet)}")
        self._macs_label.setText(f"MACs / frame at {h}×{w}")
        self.totals["macs"].setText(f"{count(b.macs)} → {count(a.macs)}  (+ SpyNet {count(a.macs_spynet)})")
        self.totals["speedup"].setText(f"×{plan.mac_ratio:.2f} (network MACs; measured time in Compare)")
        self._show_latency(plan)
        self._show_recovery()
        self.totals["notes"].setText("; ".join(plan.notes) or "–")

    def _show_recovery(self) -> None:
        """Whether the plan's network is the raw cut (noise) or reconstructed, and by how much."""
        label = self.totals["recovery"]
        current, loaded, plan = self.state.current, self.state.model, self.state.plan
        if loaded is None or plan is None:
            label.setText("–")
            return
        done = current.recovery_for(loaded.model, plan)
        if done is not None and not done.recovered:
            label.setText(f"<span style='color:{WARN}'><b>reconstructed, not recovered</b>: still further from the "
                          f"dense output than bicubic — {done.figures()}</span>")
            label.setToolTip(done.report.summary())
            return
        if done is not None:
            label.setText(f"<span style='color:{GOOD}'><b>reconstructed</b> — {done.figures()}</span>")
            label.setToolTip(done.report.summary())
            return
        if self.job is not None:
            text, color = f"<b>{RAW_CUT}</b> (reconstructing …)", STALE
        elif current.stale(loaded.model):
            old = current.recovery
            text = (f"<b>{RAW_CUT}</b>; the reconstruction of ratio {old.plan.requested_ratio:.2f} is <b>stale</b> "
                    "(the plan changed)")
            color = STALE
        elif self.reconstruct_box.isChecked():
            text, color = f"<b>{RAW_CUT}</b> (not run yet: “{self.apply_button.text()}”)", WARN
        else:
            text, color = f"<b>{RAW_CUT}</b> (reconstruction is off)", WARN
        label.setText(f"<span style='color:{color}'>{text}</span>")
        label.setToolTip("")

    def _show_latency(self, plan: Plan) -> None:
        current = self.state.current
        after = current.predicted_ms(plan)
        self.target_button.setEnabled(current.latency is not None)
        if after is None:
            self.latency_note.setVisible(False)
            if self.measure_button.isEnabled():
                self.totals["latency"].setText("not measured on this device yet")
            return
        t = current.latency
        before = t.predict_ms(plan.spec_before)
        threads = re.search(r"\((\d+) threads?\)", t.key)
        threads = f"{threads.group(1)} thread{'s' if threads.group(1) != '1' else ''}, " if threads else ""
        self.totals["latency"].setText(f"{before:.0f} → {after:.0f} ms  (×{before / after:.2f})")
        self.latency_note.setText(f"↳ {fps(after):.2f} fps; predicted for the network streamed once warm (no reading "
                                  f"or writing frames), {threads}{t.size[0]}×{t.size[1]} LR (H×W); the measured "
                                  "time is Compare's")
        self.latency_note.setVisible(True)
        self.latency_note.setToolTip(
            "Predicted from this device's latency table: the marginal time of one more frame of the network "
            "(SpyNet included) run by the streaming engine as `sr` and Compare run it, without reading or writing "
            "frames, at the thread count the table was measured with. Compare measures the streamed run.")

    def plan_for_target(self) -> None:
        """Replace the ratio plan by the one predicted to meet the target time per frame."""
        self._target_ms = float(self.target.value())
        self._widths = None
        self._schedule()

    def _leave_target(self) -> None:
        """Moving the ratio goes back to a ratio plan."""
        if (self._target_ms is not None or self._widths is not None) and self.state.plan is not None and \
                abs(self.ratio.value() - round(self.state.plan.requested_ratio, 3)) > 1e-9:
            self._target_ms = self._widths = None

    def _reconstruct_toggled(self, on: bool) -> None:
        self.state.current.reconstruct_at_cut = on
        self.apply_button.setText("Prune + reconstruct" if on else "Prune now (zero-shot)")
        self.apply_button.setToolTip(
            "Cut the network to this plan, then reconstruct it on the current clip (progress and Cancel here); "
            "Compare and Export use the result" if on else
            "Cut the network to this plan without reconstruction or training: the raw cut (far below dense, often noise; "
            "SIR in the Train step, or reconstruction, recovers it)")
        self._show_recovery()

    def apply_plan(self) -> Job | None:
        """Cut the dense network to the current plan (and reconstruct it) in the background; the result becomes
        the pruned network Compare and Export use."""
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
            on_success=done, on_event=self._job_event,
            on_failure=lambda e, t: s.error.emit("Reconstruction failed" if running else "Pruning failed", e, t),
            on_cancel=lambda: s.message.emit("reconstruction cancelled: the pruned network is unchanged"),
            on_finish=self._job_finished)
        self._show_recovery()
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.progress.setFormat("cancelling …")

    def _job_event(self, event: object) -> None:
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
        self._show_recovery()

    # -- session support ---------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"ratio": self.ratio.value(), "criterion": self.criterion.currentData(),
                "align": self.align.currentData(), "overrides": dict(self.table_model.overrides),
                "target_ms": self.target.value() if self._widths is not None else None,
                "widths": dict(self._widths or {})}

    def restore(self, ratio: float, criterion: str, align: int, overrides: dict,
                target_ms: float | None = None, widths: dict[str, int] | None = None) -> None:
        """Show a saved plan again: a ratio plan, or a latency target's exact widths (re-planned only if asked)."""
        if criterion in CRITERIA:
            self.criterion.setCurrentIndex(CRITERIA.index(criterion))
            self._offer_criteria()
        if align in ALIGN_CHOICES:
            self.align.setCurrentIndex(ALIGN_CHOICES.index(align))
        self.table_model.set_overrides(overrides)
        self.ratio.set_value(ratio)
        self._target_ms = None                 # the saved widths are the plan; a new table must not change it
        self._widths = dict(widths) if widths else None
        if target_ms is not None:
            self.target.setValue(target_ms)
        self._schedule()

"""Step 2 — Prune: a global ratio, the criterion, and what that plan does to every layer, live.

Every slider move makes a new Plan (a few ms in core) and redraws the bars, the table's Kept/Ratio columns, the
threshold and the totals. Moves that arrive faster than that are coalesced: only the latest ratio is planned.

This module is the form (ratio, criterion, widths, locks, latency target) and its wiring; the totals are
``prune_totals`` (the results view), the cut and its reconstruction ``prune_cut`` (the job). Scores measured on
frames are measured again when another clip opens; a plan that changes because of it says so.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from core.errors import UserError
from core.ssl import CRITERIA, DEFAULT_CRITERION, RECOMMENDED_ALIGN, REGISTRY, Plan, make_plan
from core.ssl.settings import LayerOverride
from core.ssl.target import plan_for_latency
from core.ssl.units import stream_layer_names

from ..state import AppState
from ..workers import Job
from ..widgets.criterion_choice import offer_criteria
from ..widgets.layer_chart import LayerChart
from ..widgets.layer_table import COLUMNS, LayerTableModel
from ..widgets.ratio_control import RatioControl
from ..widgets.score_plot import ScoreDistribution
from .prune_cut import CutControls
from .prune_totals import STALE, PruneTotals

ALIGN_CHOICES = (1, 4, 8, 16)


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
        self.cut = CutControls(state)
        self.reconstruct_box, self.apply_button = self.cut.reconstruct_box, self.cut.apply_button
        self.cancel_button, self.progress = self.cut.cancel_button, self.cut.progress
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
        self.totals_box = PruneTotals(state)
        self.totals, self.measure_button = self.totals_box.labels, self.totals_box.measure_button
        self.latency_note = self.totals_box.latency_note
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
        self._rescored_from: Plan | None = None   # the plan shown when its criterion's scores were re-measured
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
        self.state.scoresChanged.connect(self._scores_changed)
        self.pin_button.clicked.connect(lambda: self.chart.set_reference(self.state.plan))
        self.clear_pin_button.clicked.connect(lambda: self.chart.set_reference(None))
        self.apply_button.clicked.connect(self.apply_plan)
        self.cut.changed.connect(self._show_recovery)
        state.current.recoveryChanged.connect(self._show_recovery)
        self.measure_button.clicked.connect(lambda: self._load_latency(measure=True))
        self.target_button.clicked.connect(self.plan_for_target)
        self.ratio.ratioChanged.connect(self._leave_target)
        self.ratio.ratioChanged.connect(self._forget_rescore)
        state.current.latencyChanged.connect(self._schedule)
        state.modelChanged.connect(self._model_changed)
        state.clipChanged.connect(self._clip_changed)
        self.ratio.set_value(0.5)
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
        dist_box = QGroupBox("Score distribution and global threshold")
        QVBoxLayout(dist_box).addWidget(self.distribution)
        self.distribution.setMinimumHeight(130)      # readable axes (a 1280×800 screen squeezed it to a strip)

        # The totals sit beside the chart with the height they need; the distribution shares the bottom row with
        # the layer table (stacked under the totals it was squeezed to a strip on a 1280×800 screen).
        chart_box = QGroupBox("Pruning ratio per layer (hover a bar for details; outlined = pinned overlay)")
        QVBoxLayout(chart_box).addWidget(self.chart)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(chart_box)
        top.addWidget(self.totals_box)
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
        content.addWidget(self.cut)
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
        """This device's latency table for the clip's size: the cached one, or measured when asked (seconds; it
        waits until no other job of the app runs, and says so when one ran anyway)."""
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
            self.totals_box.measuring()

        def done(out) -> None:
            table, contended = out
            self.totals_box.measured(contended)
            if self._latency_shape() == shape:
                current.set_latency(table)

        self.state.runner.start(
            "latency", current.latency_job(*shape, measure=measure), on_success=done,
            on_failure=lambda e, t: self.state.error.emit("Latency measurement failed", e, t),
            on_finish=lambda: self.measure_button.setEnabled(True))

    def _criterion_changed(self) -> None:
        self.distribution.set_scores(self.state.scores(self.criterion.currentData()))
        self._schedule()

    def _scores_changed(self) -> None:
        """The frame-measured scores were dropped (another clip) or arrived: re-plan, and remember the plan shown
        when its criterion's scores were dropped, so the re-plan can say whether the cut changed."""
        criterion, plan = self.criterion.currentData(), self.state.plan
        if self.state.scores(criterion) is None and plan is not None and plan.criterion == criterion:
            self._rescored_from = plan
        self._criterion_changed()

    def _forget_rescore(self) -> None:
        self._rescored_from = None         # the user moved on: the next plan is theirs, not the re-measurement's

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
        before, self._rescored_from = self._rescored_from, None
        self.state.set_plan(plan, self._target_ms)
        self.chart.set_plan(plan)
        self.table_model.set_plan(plan)
        self.distribution.set_threshold(plan.threshold)
        self.target_button.setEnabled(self.state.current.latency is not None)
        self.totals_box.show(plan)
        self._show_recovery()
        self._say_if_rescored(before, plan)
        self.planUpdated.emit()

    def _say_if_rescored(self, before: Plan | None, plan: Plan) -> None:
        """A plan re-made because its criterion was measured again (another clip opened) says so when it keeps
        other units than the plan the user had: never a silent change of the cut."""
        if before is None or before.criterion != plan.criterion:
            return
        kept = {layer.name: tuple(layer.kept) for layer in before.layers}
        changed = sum(kept.get(layer.name) != tuple(layer.kept) for layer in plan.layers)
        if not changed:
            return
        where = self.state.clip.name if self.state.clip is not None else "the demo clip"
        text = (f"the plan changed: “{plan.criterion}” was measured again on {where}, and {changed} layer(s) now "
                "keep other units than in the plan before")
        if self.state.model is not None and self.state.current.stale(self.state.model.model):
            text += "; its reconstruction is stale"
        self.totals["notes"].setText(f"<span style='color:{STALE}'><b>{text}</b></span>; {self.totals['notes'].text()}")
        self.state.message.emit(text)

    def _show_recovery(self) -> None:
        self.totals_box.show_recovery(self.cut.job is not None, self.apply_button.text(),
                                      self.reconstruct_box.isChecked())

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

    @property
    def job(self) -> Job | None:
        """The cut's job while it runs (``prune_cut``)."""
        return self.cut.job

    def apply_plan(self) -> Job | None:
        """Cut the dense network to the current plan (and reconstruct it) in the background."""
        return self.cut.apply_plan(self._job_event)

    def cancel(self) -> None:
        self.cut.cancel()

    def _job_event(self, event: object) -> None:
        self.cut.show_event(event)

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

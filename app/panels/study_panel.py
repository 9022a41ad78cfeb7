"""Step 6 — Study: which plan is worth training. Per-group sensitivity (bars) and ratio sweeps (Pareto front).

The studies are core.study's; this panel only collects the settings, runs them in a worker job (progress,
cancel), draws the result and saves/reopens it as a study file. The sweep marks the models the user has loaded:
the dense one and the one in the pruned slot (a trained model, or the Prune step's cut once applied), by name;
with no pruned model yet, the Prune step's plan (measured with the sweep when asked, otherwise as its MACs, live
with the slider). A sweep over every frame of the clip shows, for the loaded models, the app's figures
(``app.figures``: the Y-PSNR and time Compare and Export show), measured once; the ratios follow the same rule.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QSpinBox, QStackedWidget, QVBoxLayout, QWidget)

from core.errors import UserError
from core.events import Event, Log, Progress
from core.profile.macs import frame_macs
from core.ssl import CRITERIA, DEFAULT_CRITERION
from core.ssl.plan import RECOMMENDED_ALIGN
from core.study import (GRANULARITIES, SensitivityResult, StudyClip, SweepResult, load_study, parse_ratios,
                        run_sensitivity, run_sweep, save_study)
from core.study.sweep import network_point

from ..alone import WaitingFor, measured_alone
from ..dialogs import show_error
from ..figures import timing_note
from ..state import AppState
from ..widgets.criterion_choice import offer_criteria
from ..widgets.study_charts import ParetoChart, SensitivityChart
from ..workers import Job

KINDS = {"sensitivity": "Sensitivity per layer group", "sweep": "Ratio sweep (Pareto front)"}
RUNNING = "running … (Cancel stops within one frame)"
COSTS = {"macs": "PSNR vs MACs", "ms_per_frame": "PSNR vs measured ms/frame"}


class StudyPanel(QWidget):
    studyEnded = Signal(str)                 # 'finished' | 'cancelled' | 'failed'

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job: Job | None = None
        self._outcome = "failed"
        self.results: dict[str, SensitivityResult | SweepResult] = {}
        self.kind = QComboBox()
        for key, label in KINDS.items():
            self.kind.addItem(label, key)
        self.criterion = QComboBox()
        for c in CRITERIA:
            self.criterion.addItem(c, c)
        self.criterion.setCurrentIndex(self.criterion.findData(DEFAULT_CRITERION))   # as the CLI and Prune
        self.ratio = QDoubleSpinBox()
        self.ratio.setRange(0.0, 0.95)
        self.ratio.setSingleStep(0.05)
        self.ratio.setValue(0.5)
        self.ratio.setToolTip("Fraction of each group's units pruned (the group alone; the rest stays dense)")
        self.granularity = QComboBox()
        for g in GRANULARITIES:
            self.granularity.addItem(g, g)
        self.granularity.setToolTip("block: a residual block's layers together; segment: 5 blocks; layer: each one")
        self.ratios = QLineEdit("0.3,0.5,0.7")
        self.ratios.setToolTip("Global pruning ratios, comma-separated")
        self.with_plan = QCheckBox("Measure the pruned model too")
        self.with_plan.setChecked(True)
        self.with_plan.setToolTip("The model in the pruned slot (e.g. the trained one), by its name; without one, "
                                  "the Prune step's current plan")
        self.cost = QComboBox()
        for key, label in COSTS.items():
            self.cost.addItem(label, key)
        self.frames = QSpinBox()
        self.frames.setRange(0, 10_000)
        self.frames.setSpecialValueText("all")
        self.frames.setToolTip("Frames of the clip to use (0 = all): a study runs the network once per group")
        self.run_button, self.cancel_button = QPushButton("Run study"), QPushButton("Cancel")
        self.save_button, self.open_button = QPushButton("Save result…"), QPushButton("Open result…")
        self.progress = QProgressBar()
        self.status = QLabel("Open a dense model and a clip, then run a study.")
        self.status.setWordWrap(True)
        self.sensitivity_chart, self.pareto_chart = SensitivityChart(), ParetoChart()
        self.charts = QStackedWidget()
        self.charts.addWidget(self.sensitivity_chart)
        self.charts.addWidget(self.pareto_chart)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self._build()
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.cost.currentIndexChanged.connect(self._show_plan)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(lambda: self.save())
        self.open_button.clicked.connect(lambda: self.open_result())
        for signal in (state.planChanged, state.prunedChanged, state.modelChanged):
            signal.connect(self._show_plan)
        state.modelChanged.connect(lambda: offer_criteria(self.criterion, None if state.model is None
                                                          else state.model.model))
        self._kind_changed()

    def _build(self) -> None:
        self.sens_box, self.sweep_box = QWidget(), QWidget()
        sens, sweep = QHBoxLayout(self.sens_box), QHBoxLayout(self.sweep_box)
        for layout in (sens, sweep):
            layout.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("Ratio per group"), self.ratio, QLabel("Groups"), self.granularity):
            sens.addWidget(w)
        for w in (QLabel("Ratios"), self.ratios, self.with_plan, QLabel("Axis"), self.cost):
            sweep.addWidget(w)
        top = QHBoxLayout()
        for w in (QLabel("Study"), self.kind, self.sens_box, self.sweep_box, QLabel("Criterion"), self.criterion,
                  QLabel("Frames"), self.frames):
            top.addWidget(w)
        top.addStretch(1)
        buttons = QHBoxLayout()
        for w in (self.run_button, self.cancel_button, self.progress, self.save_button, self.open_button):
            buttons.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.charts, 1)
        layout.addWidget(self.summary)
        self._set_running(False)

    # -- view ----------------------------------------------------------------------------------------------
    def current_kind(self) -> str:
        return self.kind.currentData()

    def _kind_changed(self) -> None:
        kind = self.current_kind()
        self.sens_box.setVisible(kind == "sensitivity")
        self.sweep_box.setVisible(kind == "sweep")
        self.charts.setCurrentIndex(0 if kind == "sensitivity" else 1)
        self._show(self.results.get(kind))

    def show_result(self, result: SensitivityResult | SweepResult) -> None:
        """Keep ``result`` as the latest of its kind and draw it."""
        self.results[result.kind] = result
        self._sync_controls(result)
        self.kind.setCurrentIndex(list(KINDS).index(result.kind))
        self._show(result)

    def _sync_controls(self, result: SensitivityResult | SweepResult) -> None:
        """The settings the shown result was made with (so Run repeats it, e.g. on another clip)."""
        if self.criterion.findData(result.criterion) >= 0:
            self.criterion.setCurrentIndex(self.criterion.findData(result.criterion))
        clip = self.state.clip
        every = clip is not None and clip.name == result.clip.name and result.clip.frames == len(clip)
        self.frames.setValue(0 if every else result.clip.frames)        # "all": the app's figures' frames
        if isinstance(result, SensitivityResult):
            self.ratio.setValue(result.ratio)
            self.granularity.setCurrentIndex(max(0, self.granularity.findData(result.granularity)))
        else:
            self.ratios.setText(",".join(f"{p.ratio:g}" for p in result.points if p.label.startswith("ratio")))

    def _show(self, result) -> None:
        self.save_button.setEnabled(result is not None and self.job is None)
        if isinstance(result, SensitivityResult) or result is None and self.current_kind() == "sensitivity":
            self.sensitivity_chart.set_result(result)
            self.summary.setText(_sensitivity_summary(result) if result else "")
        else:
            self.pareto_chart.set_result(result, self.cost.currentData())
            self._show_plan()
            self.summary.setText(_sweep_summary(result) if result else "")

    def _show_plan(self) -> None:
        """The loaded pruned model (or, without one, the Prune step's plan) as a line on the front at its cost,
        when the sweep shown did not measure it."""
        cost = self.cost.currentData()
        self.pareto_chart.cost = cost
        result = self.pareto_chart.result
        mark = self._unmeasured_mark(result, cost) if result is not None else None
        self.pareto_chart.set_current_plan(*(mark or (None, "")))

    def _unmeasured_mark(self, result: SweepResult, cost: str) -> tuple[float, str] | None:
        s = self.state
        if s.pruned is not None and any(p.label == pruned_label(s.pruned) for p in result.points):
            return None                        # measured: a point of its own, named
        size = result.clip.lr_size
        if s.pruned is not None:
            lineage = s.lineage()
            if lineage is not None and not lineage.comparable:
                return None                    # not derived from this dense model: no place on its front
            figure = s.figure(s.pruned.model)
            if cost == "macs":
                return frame_macs(s.pruned.model.spec, *size)[0] / 1e9, f"{pruned_label(s.pruned)} (not in this sweep)"
            if figure is not None and figure.ms_per_frame is not None and figure.size == tuple(size):
                return figure.ms_per_frame, f"{pruned_label(s.pruned)} (Compare's time, not in this sweep)"
            return None
        plan = s.plan
        if plan is None or cost != "macs" or tuple(plan.frame_size) != size or \
                any(p.label == "current plan" for p in result.points):
            return None
        return plan.after.macs / 1e9, f"Prune step's plan (ratio {plan.requested_ratio:.2f}, not measured)"

    # -- running -------------------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Start the chosen study on the loaded model and clip (both must be there)."""
        s = self.state
        if self.job is not None:
            return None
        try:
            if s.model is None:
                raise UserError("open a dense model first (Model step)")
            if s.clip is None:
                raise UserError("open a clip first (Compare step or File ▸ Open clip)")
            work = self._work(s)
        except UserError as exc:
            show_error(self, "Cannot run the study", exc)
            return None
        self.progress.setValue(0)
        self.status.setText(RUNNING)
        self.job = s.runner.start(f"study {self.current_kind()}", work, on_success=self._finished,
                                  on_failure=self._failed, on_event=self._event, on_cancel=self._cancelled,
                                  on_finish=self._job_done)
        self._set_running(True)
        return self.job

    def _work(self, s: AppState):
        n = min(self.frames.value() or len(s.clip), len(s.clip))
        if n < 2:
            raise UserError("a study needs at least 2 frames")
        pair, model, path, criterion = s.clip, s.model.model, str(s.model.path), self.criterion.currentData()

        def clip() -> StudyClip:          # frames are read from the clip's store in the worker, not the GUI
            gt = None if pair.gt is None else np.stack([pair.gt[i] for i in range(n)])
            return StudyClip(pair.name, np.stack([pair.lr[i] for i in range(n)]), gt)

        if self.current_kind() == "sensitivity":
            ratio, granularity = self.ratio.value(), self.granularity.currentData()
            def sensitivity(job: Job):
                with measured_alone():
                    return run_sensitivity(model, clip(), ratio=ratio, criterion=criterion, granularity=granularity,
                                           checkpoint=path, sink=job.emit_event, control=job.control)
            return sensitivity
        ratios = parse_ratios(self.ratios.text())
        align = s.plan.settings.align if s.plan is not None and s.plan.settings is not None else RECOMMENDED_ALIGN
        lineage = s.lineage()
        related = lineage is None or lineage.comparable         # an unrelated "pruned" model is no point of this front
        pruned = s.pruned if self.with_plan.isChecked() and related else None
        label = pruned_label(pruned) if pruned is not None else ""
        every_frame = n == len(pair)
        extra = None
        if pruned is not None and not every_frame:       # measured by the sweep, on its frames
            extra = {label: pruned.model}
        elif s.pruned is None and self.with_plan.isChecked() and s.plan is not None:
            extra = {"current plan": s.plan}
        figures = s.figures

        def sweep(job: Job) -> SweepResult:
            with measured_alone() as contended:
                result = run_sweep(model, clip(), ratios=ratios, criterion=criterion, align=align,
                                   checkpoint=path, extra=extra, sink=job.emit_event, control=job.control)
            shared = set(contended)
            if every_frame:
                # the loaded models' points are the app's figures (Compare's and Export's), measured once
                job.emit_event(Log(f"the dense and pruned models on all {n} frames: the figures Compare and Export "
                                   "show"))
                got = figures.ensure(pair, {"dense": model, "pruned": pruned.model if pruned is not None else None},
                                     model, progress=lambda d, t: job.control.checkpoint())
                result = with_figures(result, got, model, pruned.model if pruned is not None else None, label)
                shared.update(name for f in got.values() if f is not None for name in f.contended)
            return with_shared(result, shared)

        return sweep

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def is_running(self) -> bool:
        return self.job is not None

    def _event(self, e: Event) -> None:
        if isinstance(e, Progress):
            self.progress.setRange(0, e.total)
            self.progress.setValue(e.iteration)
        elif isinstance(e, Log):
            self.status.setText(e.message)
        elif isinstance(e, WaitingFor):
            self.status.setText(e.text() if e.jobs else RUNNING)

    def _finished(self, result) -> None:
        self.status.setText(f"{result.kind} finished in {result.seconds:.0f} s"
                            + (f" — {result.notes[0]}" if result.notes else ""))
        self.show_result(result)
        self._outcome = "finished"

    def _failed(self, exc: BaseException, trace: str) -> None:
        self.status.setText(f"study failed: {exc}")
        self._outcome = "failed"
        show_error(self, "Study failed", exc, trace)

    def _cancelled(self) -> None:
        self.status.setText("study cancelled; the previous result is kept")
        self._outcome = "cancelled"

    def _job_done(self) -> None:
        self.job = None
        self._set_running(False)
        self.studyEnded.emit(self._outcome)

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.open_button.setEnabled(not running)
        self.save_button.setEnabled(not running and self.results.get(self.current_kind()) is not None)

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path | None = None) -> Path | None:
        result = self.results.get(self.current_kind())
        if result is None:
            return None
        confirmed = path is None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save study result", f"{result.kind}.json",
                                                  "Study results (*.json)")
            if not path:
                return None
        try:
            written = save_study(result, path, overwrite=confirmed and Path(path).exists())
        except UserError as exc:
            show_error(self, "Cannot save the study", exc)
            return None
        self.state.message.emit(f"study saved to {written}")
        return written

    def open_result(self, path: str | Path | None = None) -> SensitivityResult | SweepResult | None:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open study result", "", "Study results (*.json)")
            if not path:
                return None
        try:
            result = load_study(path)
        except UserError as exc:
            show_error(self, "Cannot open the study", exc)
            return None
        self.status.setText(f"opened {Path(path).name} ({result.kind} of {Path(result.checkpoint).name})")
        self.show_result(result)
        return result


def _sensitivity_summary(r: SensitivityResult) -> str:
    ranked = r.ranked()
    fmt = lambda g: f"{g.name} ({r.value(g):.2f} dB)"
    return (f"Most sensitive: {', '.join(fmt(g) for g in ranked[:4])}. Least: "
            f"{', '.join(fmt(g) for g in ranked[-3:][::-1])}. {' '.join(r.notes)}")


def pruned_label(pruned) -> str:
    """The name a loaded pruned model's point carries on the front: 'pruned: file pruned.pth'."""
    return f"pruned: {pruned.origin}" if pruned is not None else ""


def with_figures(result: SweepResult, figures: dict, dense, pruned, label: str) -> SweepResult:
    """``result`` with the dense point's and the loaded pruned model's figures (``app.figures``) in place of the
    sweep's own run of them: one figure per model and clip, in every step."""
    points = list(result.points)
    d = figures.get("dense")
    if d is not None and d.ms_per_frame is not None:
        psnr = d.psnr if d.psnr is not None else points[0].psnr       # without GT the dense output is the reference
        points[0] = replace(points[0], psnr=psnr, ms_per_frame=d.ms_per_frame)
    p = figures.get("pruned")
    if pruned is not None and p is not None and p.psnr is not None:
        points.append(network_point(label, pruned, dense, result.clip.lr_size, p.psnr, p.ms_per_frame))
    note = (f"dense{' and ' + label if pruned is not None else ''}: the figures Compare and Export show, measured "
            "once per model and clip")
    return replace(result, points=tuple(points), notes=(*result.notes, note))


def with_shared(result: SweepResult, shared: set[str]) -> SweepResult:
    """``result`` saying so when the app's other jobs ran while its times were measured (``app.alone``), as
    Compare does: its ms/frame are then not this machine's alone."""
    if not shared:
        return result
    note = f"times not comparable: {', '.join(sorted(shared))} ran while they were measured; run again"
    return replace(result, notes=(*result.notes, note))


def _sweep_summary(r: SweepResult) -> str:
    rows = [f"{p.label}: {p.psnr:.2f} dB, {p.macs / 1e9:.2f} GMAC, {p.ms_per_frame:.0f} ms/frame, "
            f"{p.params / 1e6:.2f} M params" for p in r.points]
    h, w = r.clip.lr_size
    how = "mean over" if r.clip.has_gt else "over the whole clip,"
    covers = (f"Y-PSNR ({r.clip.channel}) vs {r.clip.reference}: {how} {r.clip.frames} frames of {r.clip.name}; "
              f"{timing_note(f'{r.device}, {h}×{w} LR (H×W)')}")
    return " · ".join(rows) + f". {covers}." + (f"  ({' '.join(r.notes)})" if r.notes else "")

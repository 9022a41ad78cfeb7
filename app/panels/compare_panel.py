"""Step 4 — Compare: the dense and the pruned network on a real clip, frame by frame, with PSNR and timing.

If no pruned model exists yet but a plan does, the current plan is applied (zero-shot) first, so
load → slide → compare works without visiting any other step; with "Reconstruct at the cut" on (the Prune
step's default) that network is reconstructed first, on the current clip. The job streams: frames appear in the
views and points in the plot as they are computed, and the scrubber reaches every frame already done. A pruned
model that is not derived from the dense one is said so in red, and no speed-up is claimed between them; a raw
cut (neither reconstructed nor trained), and a pruned network that scores below bicubic upscaling on the clip,
are said so in the banner too.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QSlider, QSplitter, QToolButton, QVBoxLayout, QWidget)

from core.errors import UserError

from ..compare_job import CompareFrame, new_result, run_compare
from ..dialogs import ask_yes_no
from ..figures import BICUBIC, REFERENCE_TEXT, clip_psnr, quality_note, timing_note
from ..formatting import db, ms
from ..job_events import show_job_event
from ..recovery_job import cut_pruned, show_progress
from ..state import AppState, CompareResult, PrunedModel
from ..widgets.image_views import VIEWS, ComparisonView
from ..widgets.palette import SERIES_COLORS
from ..workers import Job

MODE_LABELS = {"side": "Side by side", "wipe": "Wipe A | B", "diff": "Difference |A − B|"}
PLAY_FPS = 8
REFRESH_MS = 100            # while a comparison runs, the plot and the shown frame catch up this often
MAX_MARKED_POINTS = 60      # longer PSNR series are drawn as lines only (300 markers a series slow each repaint)
LEGEND_HEADROOM = 0.35      # of the curves' span, kept free above them for the legend
LINEAGE_STYLE = {"unrelated": "color: #b00020; font-weight: bold;", "unverified": "color: #b36b00;",
                 "derived": "color: #1e7b34;"}
LINEAGE_COLOR = {"unrelated": "#b00020", "unverified": "#b36b00", "derived": "#1e7b34"}
WARNING_STYLE = "background: #fdecea; border: 1px solid #b00020; padding: 4px;"
WARNING_COLOR = "#b00020"


class ComparePanel(QWidget):
    openClipRequested = Signal()
    openGtRequested = Signal()         # "GT…": any frames folder as the open clip's ground truth
    compareFinished = Signal()

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.job: Job | None = None
        self.clip_label = QLabel("No clip")
        self.lineage_label = QLabel()
        self.lineage_label.setWordWrap(True)
        self.lineage_label.setVisible(False)
        self.open_button = QPushButton("Open clip…")
        self.open_button.setToolTip("A folder of frames, a video, or a folder holding GT/ and BIx4/")
        self.as_gt = QCheckBox("Frames are ground truth (make LR ×4)")
        self.as_gt.setToolTip("Opened frames are high-resolution: the LR input is made by MATLAB-bicubic ×1/4")
        self.gt_button = QPushButton("GT…")
        self.gt_button.setToolTip("Name a frames folder as the ground truth of the open clip (a frame for each, "
                                  "4× its size)")
        self.run_button = QPushButton("Run dense + pruned")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.mode = QComboBox()
        for key, label in MODE_LABELS.items():
            self.mode.addItem(label, key)
        self.a, self.b = QComboBox(), QComboBox()
        self.a.addItems(VIEWS)
        self.b.addItems(VIEWS)
        self.a.setCurrentIndex(1)
        self.b.setCurrentIndex(2)
        self.wipe = QSlider(Qt.Orientation.Horizontal)
        self.wipe.setRange(0, 1000)
        self.wipe.setValue(500)
        self.wipe.setToolTip("Split position between A (left) and B (right)")
        self.save_button = QPushButton("Save view as PNG…")
        self.view = ComparisonView()
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause (Space)")
        self.frame_label = QLabel("frame –")
        self.timing = QLabel("Run the comparison to measure the time per frame of each model.")
        self.timing.setWordWrap(True)
        self.psnr_plot = pg.PlotWidget()
        self.psnr_plot.setLabel("left", "PSNR (Y), dB")
        self.psnr_plot.setLabel("bottom", "frame")
        self.psnr_plot.addLegend(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 210))    # readable over curves
        # No grid: pyqtgraph draws it inside the axes' picture, alpha-blended over the whole plot, and that paint
        # was the GUI's longest stall while a long comparison streamed (bench_gui --stall-stacks).
        self.psnr_plot.showGrid(x=False, y=False)
        self.psnr_curves = {name: self.psnr_plot.plot([], [], name=name, pen=pg.mkPen(SERIES_COLORS[name], width=2),
                                                      symbol="o", symbolSize=4,
                                                      symbolBrush=SERIES_COLORS[name], symbolPen=None)
                            for name in ("bicubic", "dense", "pruned")}
        self.frame_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#555555"))
        self.psnr_plot.addItem(self.frame_line)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(1000 // PLAY_FPS)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self._catch_up)
        self._arrived = False           # frames arrived since the last catch-up
        self._build()

        self.open_button.clicked.connect(self.openClipRequested)
        self.gt_button.clicked.connect(self.openGtRequested)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        for w in (self.mode, self.a, self.b):
            w.currentIndexChanged.connect(self._mode_changed)
        self.wipe.valueChanged.connect(lambda v: self.view.set_wipe(v / 1000))
        self.view.wipeMoved.connect(self._sync_wipe_slider)
        self.frame_slider.valueChanged.connect(self.show_frame)
        self.frame_line.sigPositionChangeFinished.connect(lambda: self.frame_slider.setValue(round(self.frame_line.value())))
        self.play_button.toggled.connect(self._toggle_play)
        self.play_timer.timeout.connect(self._next_frame)
        self.save_button.clicked.connect(self.save_view)
        state.clipChanged.connect(self._clip_changed)
        state.compareChanged.connect(self._result_changed)
        for signal in (state.modelChanged, state.prunedChanged):
            signal.connect(self._lineage_changed)
        self._clip_changed()
        self._lineage_changed()
        self._mode_changed()

    def _build(self) -> None:
        top = QHBoxLayout()
        for w in (self.open_button, self.as_gt, self.gt_button, self.clip_label):
            top.addWidget(w)
        top.addStretch(1)
        for w in (self.run_button, self.cancel_button):
            top.addWidget(w)
        top.addWidget(self.progress, 1)
        view_bar = QHBoxLayout()
        view_bar.addWidget(QLabel("View"))
        view_bar.addWidget(self.mode)
        view_bar.addWidget(QLabel("A"))
        view_bar.addWidget(self.a)
        view_bar.addWidget(QLabel("B"))
        view_bar.addWidget(self.b)
        view_bar.addWidget(QLabel("split"))
        view_bar.addWidget(self.wipe, 1)
        view_bar.addWidget(self.save_button)
        scrub = QHBoxLayout()
        scrub.addWidget(self.play_button)
        scrub.addWidget(self.frame_slider, 1)
        scrub.addWidget(self.frame_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(view_bar)
        left_layout.addWidget(self.view, 1)
        left_layout.addLayout(scrub)
        right = QGroupBox("Quality and speed")
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.psnr_plot, 1)
        right_layout.addWidget(self.timing)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.lineage_label)
        layout.addWidget(split, 1)

    # -- running ---------------------------------------------------------------------------------------
    def run(self) -> Job | None:
        """Super-resolve the clip with the dense and the pruned model in a background job."""
        s = self.state
        if s.clip is None or (s.model is None and s.pruned is None):
            self.state.message.emit("Compare needs a clip and at least one model")
            return None
        if self.job is not None:
            return None
        clip, dense, pruned, plan = s.clip, s.model, s.pruned, s.plan
        make_pruned = pruned is None and dense is not None and plan is not None
        lineage = s.lineage()
        if lineage is not None and not lineage.comparable and not ask_yes_no(
                self, "The pruned model is not derived from the dense one",
                f"{lineage.summary()}.\n\nCompare them anyway? No speed-up or quality loss will be claimed "
                "between two unrelated networks."):
            return None
        series = tuple(name for name, present in (("dense", dense is not None),
                                                  ("pruned", pruned is not None or make_pruned)) if present)
        result = new_result(clip, series)
        result.lineage = lineage
        result.compared = {"dense": id(dense.model) if dense is not None else 0,
                           "pruned": id(pruned.model) if pruned is not None else 0}

        current = s.current
        at_cut, settings = current.reconstruct_at_cut, current.reconstruct_settings
        reconstruct = make_pruned and at_cut and current.recovery_for(dense.model, plan) is None

        def work(job: Job) -> tuple[CompareResult, PrunedModel | None, object]:
            new = recovery = None
            if make_pruned:      # the plan's network: reconstructed on this clip unless that is switched off
                new, recovery = cut_pruned(job, current, dense.model, plan, clip, settings, at_cut, strict=False)
            models = {}
            if dense is not None:
                models["dense"] = dense.model
            if (new or pruned) is not None:
                models["pruned"] = (new or pruned).model
            return run_compare(job, result, models), new, recovery

        def done(out: tuple[CompareResult, PrunedModel | None, object]) -> None:
            _, new, recovery = out
            current.keep(recovery, self.state.model.model if self.state.model is not None else None)
            if new is not None:
                result.compared["pruned"] = id(new.model)
                self.state.set_pruned(new)
                result.lineage = self.state.lineage()
            networks = {"dense": dense.model if dense is not None else None,
                        "pruned": (new or pruned).model if (new or pruned) is not None else None, BICUBIC: BICUBIC}
            for name, figure in list(result.figures.items()):      # the figures every step shows from now on
                if networks.get(name) is not None:
                    result.figures[name] = s.figures.record(networks[name], clip, figure, networks["dense"],
                                                            replace=True)
            self._catch_up()
            self.state.set_compare(result)
            self.compareFinished.emit()

        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        if reconstruct:          # busy until the first refit reports (the traces come first)
            self.progress.setRange(0, 0)
            self.progress.setFormat("reconstructing the cut on this clip first …")
        self.refresh_timer.start()
        self.job = s.runner.start("compare", work, on_success=done, on_progress=self._progress,
                                  on_event=self._frame_arrived,
                                  on_failure=lambda e, t: s.error.emit("Comparison failed", e, t),
                                  on_cancel=lambda: s.message.emit("comparison cancelled"),
                                  on_finish=self._finished)
        self.state.set_compare(result)         # shown while it fills in (the job's signals are queued)
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _progress(self, done: int, total: int) -> None:
        show_progress(self.progress, done, total)

    def _frame_arrived(self, event: object) -> None:
        if isinstance(event, CompareFrame):
            self._arrived = True
        else:
            show_job_event(self.progress, self.state.message.emit, event)

    def _catch_up(self) -> None:
        """Redraw the plot, the timing and the shown frame if frames arrived (at most every REFRESH_MS)."""
        if not self._arrived:
            return
        self._arrived = False
        self._update_curves()
        self.show_frame(self.frame_slider.value())

    def _finished(self) -> None:
        self.refresh_timer.stop()
        self._catch_up()
        if self.progress.maximum() == 0:            # stopped while busy (before any frame)
            self.progress.setRange(0, 100)
        self.job = None                             # before the labels: a stopped run no longer says "Computing …"
        if self.state.compare is not None and not self.state.compare.complete:
            self.progress.setFormat("stopped at %p%")
            self._result_changed()
        self.run_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    # -- showing ---------------------------------------------------------------------------------------
    def _clip_changed(self) -> None:
        self.cancel()                          # a running comparison belongs to the previous clip
        clip = self.state.clip
        if clip is None:
            self.clip_label.setText("No clip: open a frames folder or video")
            return
        h, w = clip.lr_size
        gt = "no GT" if clip.gt is None else f"GT: {clip.gt_source.name}" if clip.gt_source else "with GT"
        self.clip_label.setText(f"<b>{clip.name}</b>: {len(clip)} frames, {h}×{w} → {4 * h}×{4 * w} (H×W), {gt}")
        self.frame_slider.setRange(0, len(clip) - 1)
        self.psnr_plot.setXRange(0, max(len(clip) - 1, 1), padding=0.02)     # frames, not an autoscaled ±500
        self.show_frame(self.frame_slider.value())

    def _update_curves(self) -> None:
        r = self.state.compare
        shown: list[float] = []
        for name, curve in self.psnr_curves.items():
            values = list(r.psnr.get(name, [])) if r is not None else []
            symbol = "o" if len(values) <= MAX_MARKED_POINTS else None     # a marker per frame only on short clips
            if curve.opts["symbol"] != symbol:
                curve.setSymbol(symbol)
            curve.setData(np.arange(len(values)), np.asarray(values, dtype=float))
            shown += [v for v in values if math.isfinite(v)]
        if shown:       # headroom above the curves for the legend (top right), which covered the top curve
            lo, hi = min(shown), max(shown)
            span = max(hi - lo, 0.5)
            self.psnr_plot.setYRange(lo - 0.05 * span, hi + LEGEND_HEADROOM * span, padding=0)
        if r is not None and self.job is not None and not r.complete:
            done = {name: len(store) for name, store in (("bicubic", r.bicubic), *r.outputs.items())}
            self.timing.setText("Computing … frames done: " + ", ".join(f"{k} {v}/{len(r.clip)}"
                                                                      for k, v in done.items()))

    def _result_changed(self) -> None:
        r = self.state.compare
        self._update_curves()
        reference = REFERENCE_TEXT.get(r.reference if r is not None else "GT", "")
        self.psnr_plot.setLabel("left", f"PSNR (Y) {reference}, dB")
        if r is None:
            self.timing.setText("Run the comparison to measure the time per frame of each model.")
        elif r.complete or self.job is None:
            self.timing.setText(self._timing_text(r))
        self.show_frame(self.frame_slider.value())
        self._show_banner()

    def _lineage_changed(self) -> None:
        if self.job is None:
            self._result_changed()             # results of networks no longer loaded are marked as such
        self._show_banner()

    def below_bicubic(self) -> tuple[float, float, int] | None:
        """(pruned, bicubic, frames): the mean Y-PSNR of the pruned network and of bicubic upscaling over the
        frames both have, when the last comparison ran the current pruned network and it scored below bicubic."""
        r, pruned = self.state.compare, self.state.pruned
        if r is None or pruned is None or r.compared.get("pruned") != id(pruned.model):
            return None
        p, b = r.psnr.get("pruned") or [], r.psnr.get("bicubic") or []
        n = min(len(p), len(b))
        if n == 0:
            return None
        mp, mb = clip_psnr(p[:n], r.reference), clip_psnr(b[:n], r.reference)      # the figures' rule
        return (mp, mb, n) if not mp >= mb else None        # NaN counts as below

    def _show_banner(self) -> None:
        """What the pruned network is, in one banner: its lineage (green / orange / red) and, in a warning
        colour, a raw cut (far below dense, often noise) and a score below bicubic upscaling on this clip."""
        s = self.state
        pruned, lineage = s.pruned, s.lineage()
        lines, warnings = [], []
        if pruned is not None and lineage is not None:
            lines.append(f"<span style='color:{LINEAGE_COLOR[lineage.status]}'>Pruned model <b>{pruned.origin}</b>: "
                         f"{lineage.summary()}</span>")
        if pruned is not None and pruned.status.raw_cut:
            what = ("reconstructed at the cut but not recovered (its output stayed further from the dense one than "
                    "bicubic upscaling's), not trained" if pruned.status.reconstructed else
                    "a raw cut — not reconstructed, not trained: far below the dense network, often noise")
            warnings.append(f"⚠ <b>{pruned.origin} is {what}.</b> Reconstruct it in the Prune step (“Prune + "
                            "reconstruct”) or train it (Train step) before judging what pruning costs.")
        low = self.below_bicubic()
        if low is not None:
            mp, mb, n = low
            r = s.compare
            warnings.append(f"⚠ <b>Below bicubic:</b> on {n} frames of {r.clip.name} the pruned network scores "
                            f"{db(mp)} Y-PSNR {REFERENCE_TEXT[r.reference]}, bicubic upscaling {db(mb)}: it is "
                            "worse than no network at all.")
        lines += [f"<span style='color:{WARNING_COLOR}'>{w}</span>" for w in warnings]
        self.lineage_label.setVisible(bool(lines))
        self.lineage_label.setText("<br>".join(lines))
        if warnings:
            self.lineage_label.setStyleSheet(WARNING_STYLE)
        elif lineage is not None:
            self.lineage_label.setStyleSheet(LINEAGE_STYLE[lineage.status])

    def _timing_text(self, r: CompareResult) -> str:
        """Each series' Y-PSNR and time per frame (``app.figures``: the figures Export and Study show too), and
        what they cover."""
        s = self.state
        now = {"dense": id(s.model.model) if s.model is not None else 0,
               "pruned": id(s.pruned.model) if s.pruned is not None else 0}
        lines = [] if r.complete else ["<b>stopped before the end</b> (figures over the frames done, not kept)"]
        if r.compared and r.compared != now:
            lines.append("<span style='color:#b36b00'><b>results of the previously loaded networks</b>: "
                         "run again to compare the current ones</span>")
        reference = REFERENCE_TEXT.get(r.reference, "")
        for name in (*r.outputs, BICUBIC):
            figure = r.figures.get(name)
            values = r.psnr.get(name)
            if figure is not None:
                quality = figure.psnr_text(unit=False) if figure.psnr is not None else None
            else:
                quality = f"{clip_psnr(values, r.reference):.2f}" if values else None
            parts = [f"{quality} dB"] if quality else []
            if figure is not None and figure.ms_per_frame is not None:
                parts.append(figure.ms_text())
            elif name in r.seconds_per_frame:
                parts.append(f"{ms(r.seconds_per_frame[name])}/frame")
            if name == "dense" and r.reference == "dense":
                parts.append("the reference")
            if parts:
                lines.append(f"<b>{name}</b>: " + " · ".join(parts))
        spf = r.seconds_per_frame
        contended = sorted({job for f in r.figures.values() for job in f.contended})
        if contended:
            lines.append(f"<span style='color:#b00020'><b>times not comparable</b>: "
                         f"{', '.join(contended)} ran while they were measured; run again</span>")
        if "dense" in spf and "pruned" in spf and spf["pruned"] > 0 and not contended:
            if r.lineage is not None and not r.lineage.comparable:
                lines.append("<span style='color:#b00020'><b>no speed-up shown</b>: the pruned model is not "
                             "derived from the dense one</span>")
            else:
                lines.append(f"measured speed-up ×{spf['dense'] / spf['pruned']:.2f}")
        lines.append(f"<span style='color:#555555'>{self._covers(r, reference)}</span>")
        return "<br>".join(lines)

    def _covers(self, r: CompareResult, reference: str) -> str:
        """What the figures above cover (frames, reference, what the time includes, threads, size)."""
        timed = next((f for f in r.figures.values() if f.ms_per_frame is not None), None)
        if r.complete:
            text = quality_note(r.reference, len(r.clip), r.clip.name)
        else:
            text = f"Y-PSNR {reference} on the frames done"
        if timed is not None:
            text += f". {timing_note(timed.timing_context)}"
        return text + "."

    def show_frame(self, index: int) -> None:
        clip = self.state.clip
        if clip is None:
            return
        index = min(max(index, 0), len(clip) - 1)
        r = self.state.compare
        outputs = r.outputs if r is not None else {}
        frames = {"LR (bicubic)": r.bicubic.get(index) if r is not None else None,
                  "Dense SR": outputs["dense"].get(index) if "dense" in outputs else None,
                  "Pruned SR": outputs["pruned"].get(index) if "pruned" in outputs else None,
                  "GT": clip.gt[index] if clip.gt is not None else None}
        running = {view: "not computed yet" for view, series in (("LR (bicubic)", "bicubic"), ("Dense SR", "dense"),
                                                                 ("Pruned SR", "pruned"))
                   if self.job is not None and r is not None and (series == "bicubic" or series in outputs)}
        self.view.set_frames(frames, running)
        self.frame_line.setValue(index)
        label = f"frame {index + 1}/{len(clip)}"
        if r is not None:
            parts = [f"{n} {r.psnr[n][index]:.2f}" for n in ("dense", "pruned") if n in r.psnr
                     and index < len(r.psnr[n]) and math.isfinite(r.psnr[n][index])]
            if parts:
                label += " · PSNR " + ", ".join(parts) + f" dB {REFERENCE_TEXT.get(r.reference, '')}"
        self.frame_label.setText(label)

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        for w in (self.a, self.b, self.wipe):
            w.setEnabled(mode != "side")
        self.view.set_mode(mode, self.a.currentText(), self.b.currentText())
        self.view.set_wipe(self.wipe.value() / 1000)

    def _sync_wipe_slider(self, fraction: float) -> None:
        self.wipe.blockSignals(True)
        self.wipe.setValue(round(fraction * 1000))
        self.wipe.blockSignals(False)

    def _toggle_play(self, playing: bool) -> None:
        self.play_button.setText("⏸" if playing else "▶")
        if playing:
            self.play_timer.start()
        else:
            self.play_timer.stop()

    def _next_frame(self) -> None:
        n = self.frame_slider.maximum() + 1
        self.frame_slider.setValue((self.frame_slider.value() + 1) % max(n, 1))

    def save_view(self, path: str | None = None) -> bool:
        """Write what the view shows now to a PNG (asks for a file name when none is given)."""
        confirmed = not path      # the file dialog asks before replacing a file
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save view as PNG", "comparison.png", "PNG image (*.png)")
            if not path:
                return False
        try:
            self.view.save_png(path, overwrite=confirmed)
        except UserError as exc:
            self.state.message.emit(f"could not write {path}: {exc}")
            return False
        self.state.message.emit(f"saved view to {path}")
        return True

"""Step 4 — Compare: the dense and the pruned network on a real clip, frame by frame, with PSNR and timing.

If no pruned model exists yet but a plan does, the current plan is applied (zero-shot) first, so
load → slide → compare works without visiting any other step; with "Reconstruct at the cut" on (the Prune
step's default) that network is reconstructed first, on the current clip. The job streams: frames appear in the
views and points in the plot as they are computed, and the scrubber reaches every frame already done. A pruned
model that is not derived from the dense one is said so in red, and no speed-up is claimed between them; a raw
cut (neither reconstructed nor trained), and a pruned network that scores below bicubic upscaling on the clip,
are said so in the banner too.

This module is the clip and run controls, the banner and the job's wiring; the frames are ``compare_viewer``,
the plot and the figures ``compare_figures``.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSplitter, QVBoxLayout, QWidget

from ..compare_job import CompareFrame, new_result, run_compare
from ..dialogs import ask_yes_no
from ..figures import BICUBIC, REFERENCE_TEXT, clip_psnr
from ..formatting import db
from ..job_events import show_job_event
from ..recovery_job import cut_pruned, show_progress
from ..state import AppState, CompareResult, PrunedModel
from ..workers import Job
from .compare_figures import CompareFigures
from .compare_viewer import FrameViewer

REFRESH_MS = 100            # while a comparison runs, the plot and the shown frame catch up this often
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
        running = lambda: self.job is not None      # noqa: E731
        self.viewer = FrameViewer(state, running)
        self.figures_box = CompareFigures(state, running)
        v, f = self.viewer, self.figures_box
        self.mode, self.a, self.b, self.wipe, self.save_button = v.mode, v.a, v.b, v.wipe, v.save_button
        self.view, self.frame_slider, self.play_button, self.frame_label = v.view, v.frame_slider, v.play_button, \
            v.frame_label
        self.timing, self.psnr_plot, self.psnr_curves, self.frame_line = f.timing, f.plot, f.curves, f.frame_line
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self._catch_up)
        self._arrived = False           # frames arrived since the last catch-up
        self._build()

        self.open_button.clicked.connect(self.openClipRequested)
        self.gt_button.clicked.connect(self.openGtRequested)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.viewer.frameShown.connect(self.frame_line.setValue)
        self.frame_line.sigPositionChangeFinished.connect(lambda: self.frame_slider.setValue(round(self.frame_line.value())))
        state.clipChanged.connect(self._clip_changed)
        state.compareChanged.connect(self._result_changed)
        for signal in (state.modelChanged, state.prunedChanged):
            signal.connect(self._lineage_changed)
        self._clip_changed()
        self._lineage_changed()

    def _build(self) -> None:
        top = QHBoxLayout()
        for w in (self.open_button, self.as_gt, self.gt_button, self.clip_label):
            top.addWidget(w)
        top.addStretch(1)
        for w in (self.run_button, self.cancel_button):
            top.addWidget(w)
        top.addWidget(self.progress, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.viewer)
        split.addWidget(self.figures_box)
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
        self.figures_box.update_curves()
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
        self.figures_box.set_frames(len(clip))
        self.show_frame(self.frame_slider.value())

    def _result_changed(self) -> None:
        self.figures_box.show_result()
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
        return self.figures_box.timing_text(r)

    def show_frame(self, index: int) -> None:
        self.viewer.show_frame(index)

    def save_view(self, path: str | None = None) -> bool:
        return self.viewer.save_view(path)

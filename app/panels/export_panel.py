"""Step 5 — Export: write the pruned network (checkpoint, ONNX fp32/int8) and an HDF5 report, verified and proven.

Every file is checked before it is moved into place (reloaded and run against the in-memory network at clip
shapes it never saw) and then proven on every frame of the current clip: size on disk, precision, the shapes and
max difference it was verified at, ms per frame on this machine and Y-PSNR (vs GT, or vs the dense output without
GT), with the float network's, the dense network's and bicubic's figures on the same frames beside it — the
figures Compare and Study show (``app.figures``). A raw cut's int8 file is refused
with the CLI's one-line reason; files of an existing stem are replaced only after the user says so; results of
a model that is no longer the current one are marked as such.

This module is the form (destination, files, the int8 budget) and the job's wiring; the rows are
``export_results``, the compress box ``compress_box``.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QVBoxLayout, QWidget)

import numpy as np

from core.deploy import ExportCheck
from core.deploy.check import Int8OverBudget
from core.deploy.quantize import MAX_CALIB_FRAMES, NotWorthQuantizingError
from core.errors import UserError
from core.io.output import claim_output
from core.recover.status import RECONSTRUCTION_KEY

from ..dialogs import ask_yes_no, show_error
from ..export_job import FORMATS, ExportRequest, run_export, target_paths
from ..job_events import show_job_event
from ..recovery_job import cut_pruned, show_progress
from ..state import AppState
from ..workers import Job
from .compress_box import CompressBox
from .export_results import ExportResults, over_budget


class ExportPanel(QWidget):
    exportFinished = Signal(object)          # list of ExportOutcome

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.source = QLabel()
        self.source.setWordWrap(True)
        self.folder = QLineEdit(str(Path.cwd() / "exports"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.stem = QLineEdit("basicvsr_pruned")
        self.checks = {key: QCheckBox(f"{spec[0]} ({spec[1]})") for key, spec in FORMATS.items()}
        for key, box in self.checks.items():
            box.setChecked(key != "onnx_int8_half_flow")     # an approximation: the user opts in
        self.checks["onnx"].setToolTip("Any frames, height and width; needs the 'export' extra (onnx, onnxscript, "
                                       "onnxruntime); the trace takes minutes on a busy 2-core CPU")
        self.checks["onnx_int8"].setToolTip("Calibrated on the current clip; the costliest layers stay float until "
                                            "the Y-PSNR drop is within the budget")
        self.checks["onnx_int8_half_flow"].setToolTip(
            "Also skips SpyNet's finest level (flow at half resolution, upsampled): about a fifth faster for a "
            "pruned network; the drop budget covers both approximations, counted from the network as trained")
        self.max_drop = QDoubleSpinBox()
        self.max_drop.setRange(0.01, 5.0)
        self.max_drop.setSingleStep(0.05)
        self.max_drop.setValue(0.3)
        self.max_drop.setSuffix(" dB")
        self.export_button = QPushButton("Export and verify")
        self.progress = QProgressBar()
        self.results_view = ExportResults()
        self.results, self.results_note = self.results_view.tree, self.results_view.note
        self.job: Job | None = None
        self.compress = CompressBox(state)
        self._build(browse)
        self.export_button.clicked.connect(self.export)
        for signal in (state.prunedChanged, state.planChanged, state.modelChanged, state.current.recoveryChanged):
            signal.connect(self._refresh)
        self._refresh()

    def _build(self, browse: QPushButton) -> None:
        where = QGroupBox("Destination")
        form = QFormLayout(where)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        form.addRow("File name stem", self.stem)
        what = QGroupBox("Files")
        files = QVBoxLayout(what)
        for box in self.checks.values():
            files.addWidget(box)
        budget = QHBoxLayout()
        budget.addWidget(QLabel("int8: largest Y-PSNR drop allowed"))
        budget.addWidget(self.max_drop)
        budget.addStretch(1)
        files.addLayout(budget)
        run = QHBoxLayout()
        run.addWidget(self.export_button)
        run.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source)
        layout.addWidget(where)
        layout.addWidget(what)
        layout.addLayout(run)
        layout.addWidget(self.results_view, 1)
        layout.addWidget(self.compress)

    def _network_key(self) -> tuple | None:
        """Which network an export would write now (results of another one are marked)."""
        s = self.state
        if s.pruned is not None:
            return ("pruned", id(s.pruned.model))
        if s.plan is not None and s.model is not None:
            recovery = s.current.recovery_for(s.model.model, s.plan)
            return ("plan", id(s.model.model), tuple((l.name, l.kept) for l in s.plan.layers), id(recovery))
        return None

    def _refresh(self) -> None:
        p, plan = self.state.pruned, self.state.plan
        if p is not None:
            text = (f"Exporting the pruned model: <b>{p.origin}</b>, "
                    f"{p.model.count_parameters(include_spynet=False):,} parameters (no SpyNet).")
            if p.status.raw_cut:
                what = ("reconstructed but not recovered (further from the dense output than bicubic), not trained"
                        if p.status.reconstructed else "a raw cut — not reconstructed, not trained: far below the dense network, often noise")
                text += (f"<br><span style='color:#b00020'><b>It is {what}.</b> An int8 file of a network worse "
                         "than bicubic is refused; reconstruct it in the Prune step or train it first.</span>")
        elif plan is not None:
            recovered = self.state.model is not None and \
                self.state.current.recovery_for(self.state.model.model, plan) is not None
            how = ("its reconstructed network" if recovered else
                   "reconstructed on the current clip first" if self.state.current.reconstruct_at_cut else
                   "the raw cut, not reconstructed: far below the dense network, often noise")
            text = f"No pruned model yet: exporting will first apply the current plan (ratio " \
                   f"{plan.requested_ratio:.2f}: {how})."
        else:
            text = "Nothing to export yet: load a model and choose a pruning ratio (or finish a training run)."
        self.source.setText(text)
        self.export_button.setEnabled((p is not None or plan is not None) and self.job is None)
        self._mark_results()

    def _mark_results(self) -> None:
        self.results_view.mark(self._network_key())

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def export(self) -> Job | None:
        """Write the chosen files in a background job and list the verdicts."""
        s = self.state
        formats = tuple(fmt for fmt, box in self.checks.items() if box.isChecked())
        if not formats or self.job is not None or (s.pruned is None and (s.plan is None or s.model is None)):
            return None
        pruned, plan, dense, clip, current = s.pruned, s.plan, s.model, s.clip, s.current
        report_plan = pruned.plan if pruned is not None else plan
        meta = {"origin": pruned.origin if pruned else f"plan {plan.requested_ratio:.2f}",
                "dense_checkpoint": str(dense.path) if dense else None,
                "pruned_model_meta": pruned.meta if pruned else {},
                "plan": report_plan.to_json(scores=True) if report_plan is not None else None}
        metrics = {}
        if s.compare is not None:
            vs = "" if s.compare.reference == "GT" else "vs_dense_"
            metrics = {f"psnr_{vs}{k}": v for k, v in s.compare.psnr.items()}
            metrics.update({f"seconds_per_frame_{k}": v for k, v in s.compare.seconds_per_frame.items()})
        lr, gt = _clip_frames(s.clip)
        if any(FORMATS[key][3].get("precision") == "int8" for key in formats) and lr is None:
            s.error.emit("Export failed", ValueError("int8 is calibrated on the current clip: open a clip first"), "")
            return None
        max_drop, frame_size = self.max_drop.value(), s.frame_size
        folder, stem = Path(self.folder.text()).expanduser(), self.stem.text().strip() or "basicvsr_pruned"
        inputs = tuple(str(p) for p in (dense.path if dense else None, pruned.path if pruned else None,
                                        clip.source if clip else None) if p is not None)
        overwrite = self._confirm_replace(folder, stem, formats, inputs)
        if overwrite is None:
            return None
        reconstruct = pruned is None and current.reconstruct_at_cut
        settings = current.reconstruct_settings

        def work(job: Job):
            recovery = None
            if pruned is not None:
                network, status_meta = pruned.model, pruned.meta
            else:        # the plan's network, reconstructed on this clip unless that is switched off
                built, recovery = cut_pruned(job, current, dense.model, plan, clip, settings, reconstruct,
                                             strict=False)
                network, status_meta = built.model, built.meta
                meta["origin"] = built.origin
            # how the network was made, where a model file says it (core.recover.status reads it back)
            meta.update({k: status_meta[k] for k in ("training", RECONSTRUCTION_KEY) if k in status_meta})
            outcomes = run_export(job, ExportRequest(
                network, folder, stem, formats, report_plan, meta, metrics, lr, gt, max_drop, tuple(frame_size),
                dense=dense.model if dense is not None else None, clip_name=clip.name if clip else "",
                overwrite=overwrite, inputs=inputs, clip=clip, figures=s.figures))
            return outcomes, recovery, meta["origin"]

        self.results_view.clear(self._network_key())
        self.export_button.setEnabled(False)
        self.progress.setRange(0, 0 if reconstruct else 1)
        self.progress.setValue(0)
        self.progress.setFormat("preparing …" if reconstruct else "%p%")
        key = self._network_key()
        self.job = s.runner.start("export", work, on_success=lambda out: self._done(out, key),
                                  on_progress=self._progress, on_event=self._event,
                                  on_failure=lambda e, t: s.error.emit("Export failed", e, t),
                                  on_finish=self._finished)
        return self.job

    def _confirm_replace(self, folder: Path, stem: str, formats: tuple[str, ...],
                         inputs: tuple[str, ...]) -> bool | None:
        """False: nothing to replace; True: the user agreed to replace the existing files; None: do not export
        (the user said no, or a target is one of the export's own inputs, which is never replaced)."""
        paths = target_paths(folder, stem, formats)
        try:
            for path in paths.values():
                claim_output(path, inputs=inputs, overwrite=True)
        except UserError as exc:
            show_error(self, "Cannot export there", exc)
            return None
        existing = [p for p in paths.values() if p.exists()]
        if not existing:
            return False
        names = "\n".join(f"  {p.name}" for p in existing)
        if ask_yes_no(self, "Replace existing files?",
                      f"{len(existing)} file(s) named “{stem}” already exist in {folder}:\n{names}\n\nReplace them? "
                      "Each is replaced only once its new version is written and verified."):
            return True
        self.state.message.emit("export cancelled: the existing files were kept")
        return None

    def _progress(self, done: int, total: int) -> None:
        show_progress(self.progress, done, total)

    def _event(self, event: object) -> None:
        show_job_event(self.progress, self.state.message.emit, event)

    def _finished(self) -> None:
        self.job = None
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        self._refresh()

    def _done(self, out, key: tuple | None) -> None:
        results, recovery, origin = out
        dense = self.state.model.model if self.state.model is not None else None
        if self.state.current.keep(recovery, dense) and key is not None and key[0] == "plan":
            key = self._network_key()      # the network exported is this plan's reconstruction
        self.results_view.show(results, key, origin)
        self.results_view.mark(self._network_key())
        self.exportFinished.emit(results)
        self.state.message.emit("export finished: " + ", ".join(f"{o.key} {_verdict(o.result)}" for o in results))


def _verdict(result: object) -> str:
    """One word per file for the status bar: a guard's refusal or an int8 file over budget is not a failure."""
    if isinstance(result, ExportCheck):
        return "ok" if result.ok else "over the int8 budget" if over_budget(result) else "FAILED"
    if isinstance(result, Int8OverBudget):
        return "over the int8 budget"
    return "REFUSED" if isinstance(result, NotWorthQuantizingError) else "FAILED"


def _clip_frames(clip) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The first frames of the current clip (and its GT): int8 calibration (each file is proven on all frames)."""
    if clip is None:
        return None, None
    n = min(len(clip.lr), MAX_CALIB_FRAMES)
    lr = np.stack([clip.lr[i] for i in range(n)])
    gt = np.stack([clip.gt[i] for i in range(n)]) if clip.gt is not None else None
    return lr, gt

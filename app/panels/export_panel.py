"""Step 5 — Export: write the pruned network (checkpoint, ONNX fp32/int8) and an HDF5 report, verified and proven.

Every file is checked before it is moved into place (reloaded and run against the in-memory network at clip
shapes it never saw) and then proven on the current clip: size on disk, precision, the shapes and max difference
it was verified at, ms per frame on this machine and Y-PSNR (vs GT, or vs the float PyTorch network without GT).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

import numpy as np

from core.deploy import ExportCheck
from core.deploy.measure import PROOF_FRAMES, FileProof

from ..export_job import FORMATS, ExportOutcome, ExportRequest, run_export
from ..state import AppState
from ..workers import Job


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
        self.results = QTreeWidget()
        self.results.setHeaderLabels(["File", "Result", "Size", "Precision", "Verified at (max |diff|)",
                                      "ms/frame here", "Y-PSNR", "Details"])
        self.results.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.results.header().setStretchLastSection(True)
        self._build(browse)
        self.export_button.clicked.connect(self.export)
        state.prunedChanged.connect(self._refresh)
        state.planChanged.connect(self._refresh)
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
        layout.addWidget(QLabel(f"Results: each file reloaded and compared with the in-memory network, then run on "
                                f"the first {PROOF_FRAMES} frames of the current clip"))
        layout.addWidget(self.results, 1)

    def _refresh(self) -> None:
        p, plan = self.state.pruned, self.state.plan
        if p is not None:
            text = (f"Exporting the pruned model: <b>{p.origin}</b>, "
                    f"{p.model.count_parameters(include_spynet=False):,} parameters (no SpyNet).")
        elif plan is not None:
            text = (f"No pruned model yet: exporting will first apply the current plan "
                    f"(ratio {plan.requested_ratio:.2f}, zero-shot).")
        else:
            text = "Nothing to export yet: load a model and choose a pruning ratio (or finish a training run)."
        self.source.setText(text)
        self.export_button.setEnabled(p is not None or plan is not None)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export folder", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def export(self) -> Job | None:
        """Write the chosen files in a background job and list the verdicts."""
        s = self.state
        formats = tuple(fmt for fmt, box in self.checks.items() if box.isChecked())
        if not formats or (s.pruned is None and (s.plan is None or s.model is None)):
            return None
        pruned, plan, dense = s.pruned, s.plan, s.model
        report_plan = pruned.plan if pruned is not None else plan
        meta = {"origin": pruned.origin if pruned else f"plan {plan.requested_ratio:.2f}, zero-shot",
                "dense_checkpoint": str(dense.path) if dense else None,
                "pruned_model_meta": pruned.meta if pruned else {},
                "plan": report_plan.to_json(scores=True) if report_plan is not None else None}
        metrics = {}
        if s.compare is not None:
            metrics = {f"psnr_{k}": v for k, v in s.compare.psnr.items()}
            metrics.update({f"seconds_per_frame_{k}": v for k, v in s.compare.seconds_per_frame.items()})
        lr, gt = _clip_frames(s.clip)
        if any(FORMATS[key][3].get("precision") == "int8" for key in formats) and lr is None:
            s.error.emit("Export failed", ValueError("int8 is calibrated on the current clip: open a clip first"), "")
            return None
        max_drop, frame_size = self.max_drop.value(), s.frame_size
        folder, stem = Path(self.folder.text()).expanduser(), self.stem.text().strip() or "basicvsr_pruned"

        def work(job: Job):
            model = pruned.model if pruned is not None else self.state.current.network(dense.model, plan)
            return run_export(job, ExportRequest(model, folder, stem, formats, report_plan, meta, metrics, lr, gt,
                                                 max_drop, tuple(frame_size)))

        self.results.clear()
        self.export_button.setEnabled(False)
        return s.runner.start("export", work, on_success=self._show,
                              on_progress=lambda d, t: (self.progress.setMaximum(t), self.progress.setValue(d)),
                              on_failure=lambda e, t: s.error.emit("Export failed", e, t),
                              on_finish=self._refresh)

    def _show(self, results: list[ExportOutcome]) -> None:
        for outcome in results:
            self.results.addTopLevelItem(_result_item(outcome))
        self.exportFinished.emit(results)
        self.state.message.emit("export finished: " + ", ".join(
            f"{o.key} {'ok' if isinstance(o.result, ExportCheck) and o.result.ok else 'FAILED'}" for o in results))


def _clip_frames(clip) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The first frames of the current clip (and its GT): int8 calibration and the per-file proof."""
    if clip is None:
        return None, None
    n = min(len(clip.lr), PROOF_FRAMES)
    lr = np.stack([clip.lr[i] for i in range(n)])
    gt = np.stack([clip.gt[i] for i in range(n)]) if clip.gt is not None else None
    return lr, gt


def _size_text(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _result_item(outcome: ExportOutcome) -> QTreeWidgetItem:
    label = FORMATS[outcome.key][0]
    check = outcome.result
    if not isinstance(check, ExportCheck):
        item = QTreeWidgetItem([label, "✘ failed", "", "", "", "", "", f"{type(check).__name__}: {check}"])
        item.setForeground(1, QColor("#b00020"))
        return item
    verdict = ("✔ verified" if check.ok else "✘ mismatch") if check.max_abs_diff is not None or check.psnr_drop \
        is not None else "✔ written and reloaded"
    verified = ""
    if check.shapes:
        verified = f"{check.shapes_text()} ({check.max_abs_diff:.1e})"
    elif check.max_abs_diff is not None:
        verified = f"3x32x32 ({check.max_abs_diff:.1e})"
    proof = outcome.proof
    ms = psnr = ""
    details = check.summary()
    if isinstance(proof, FileProof):
        ms = f"{proof.ms_per_frame:.0f} at {proof.size[1]}x{proof.size[0]}"
        psnr = f"{proof.y_psnr:.2f} dB vs {proof.reference}"
    elif isinstance(proof, BaseException):
        details = f"proof failed: {type(proof).__name__}: {proof}; {details}"
    if check.psnr_drop is not None:
        kept = ", ".join(check.kept_float) or "none"
        details = f"drop {check.psnr_drop:.2f} dB vs float ({check.detail.split('drop vs ')[-1]}); kept float: {kept}"
    precision = check.precision if check.format in ("onnx", "model") else ""
    if check.flow != "full":
        precision += f", {check.flow} flow"
    item = QTreeWidgetItem([label, verdict, _size_text(check.size_bytes), precision, verified, ms, psnr, details])
    item.setForeground(1, QColor("#1e7b34" if check.ok else "#b00020"))
    item.setToolTip(7, check.summary())
    return item

"""Step 5 — Export: write the pruned network (checkpoint, TorchScript, ONNX) and an HDF5 report, verified.

Every file is checked right after writing (reloaded and run against the in-memory network) and the verdict is
listed, so a broken export is seen here and not by whoever deploys it.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QSpinBox, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from core.ssl.export import ExportCheck

from ..export_job import FORMATS, ExportRequest, run_export
from ..state import AppState
from ..workers import Job


class ExportPanel(QWidget):
    exportFinished = Signal(object)          # list of (format, ExportCheck | exception)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.source = QLabel()
        self.source.setWordWrap(True)
        self.folder = QLineEdit(str(Path.cwd() / "exports"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.stem = QLineEdit("basicvsr_pruned")
        self.checks = {fmt: QCheckBox(f"{label} ({ext})") for fmt, (label, ext) in FORMATS.items()}
        for box in self.checks.values():
            box.setChecked(True)
        self.checks["onnx"].setToolTip("Needs the 'export' extra (onnx, onnxscript, onnxruntime); takes ~10 s")
        self.shape = {name: QSpinBox() for name in ("frames", "height", "width")}
        for name, (lo, hi, value) in {"frames": (2, 100, 5), "height": (16, 1080, 64), "width": (16, 1920, 64)}.items():
            self.shape[name].setRange(lo, hi)
            self.shape[name].setValue(value)
        self.export_button = QPushButton("Export and verify")
        self.progress = QProgressBar()
        self.results = QTreeWidget()
        self.results.setHeaderLabels(["Format", "Result", "Details"])
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
        shape = QHBoxLayout()
        shape.addWidget(QLabel("Traced input shape (frames × height × width)"))
        for box in self.shape.values():
            shape.addWidget(box)
        shape.addStretch(1)
        files.addLayout(shape)
        run = QHBoxLayout()
        run.addWidget(self.export_button)
        run.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.source)
        layout.addWidget(where)
        layout.addWidget(what)
        layout.addLayout(run)
        layout.addWidget(QLabel("Results (each file reloaded and compared with the in-memory network)"))
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
        shape = tuple(box.value() for box in self.shape.values())
        folder, stem = Path(self.folder.text()).expanduser(), self.stem.text().strip() or "basicvsr_pruned"

        def work(job: Job):
            model = pruned.model if pruned is not None else self.state.current.network(dense.model, plan)
            return run_export(job, ExportRequest(model, folder, stem, formats, report_plan, meta, metrics, shape))

        self.results.clear()
        self.export_button.setEnabled(False)
        return s.runner.start("export", work, on_success=self._show,
                              on_progress=lambda d, t: (self.progress.setMaximum(t), self.progress.setValue(d)),
                              on_failure=lambda e, t: s.error.emit("Export failed", e, t),
                              on_finish=self._refresh)

    def _show(self, results: list) -> None:
        for fmt, outcome in results:
            label = FORMATS[fmt][0]
            if isinstance(outcome, ExportCheck):
                verdict = "✔ verified" if outcome.ok else "✘ mismatch"
                if outcome.max_abs_diff is None:
                    verdict = "✔ written and reloaded"
                item = QTreeWidgetItem([label, verdict, outcome.summary()])
                item.setForeground(1, QColor("#1e7b34" if outcome.ok else "#b00020"))
            else:
                item = QTreeWidgetItem([label, "✘ failed", f"{type(outcome).__name__}: {outcome}"])
                item.setForeground(1, QColor("#b00020"))
            self.results.addTopLevelItem(item)
        self.exportFinished.emit(results)
        self.state.message.emit("export finished: " + ", ".join(
            f"{fmt} {'ok' if isinstance(o, ExportCheck) and o.ok else 'FAILED'}" for fmt, o in results))

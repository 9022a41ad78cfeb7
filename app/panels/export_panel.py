"""Step 5 — Export: write the pruned network (checkpoint, ONNX fp32/int8) and an HDF5 report, verified and proven.

Every file is checked before it is moved into place (reloaded and run against the in-memory network at clip
shapes it never saw) and then proven on every frame of the current clip: size on disk, precision, the shapes and
max difference it was verified at, ms per frame on this machine and Y-PSNR (vs GT, or vs the dense output without
GT), with the float network's, the dense network's and bicubic's figures on the same frames beside it — the
figures Compare and Study show (``app.figures``). A raw cut's int8 file is refused
with the CLI's one-line reason; files of an existing stem are replaced only after the user says so; results of
a model that is no longer the current one are marked as such.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QCheckBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

import numpy as np

from core.deploy import ExportCheck
from core.deploy.measure import FileProof
from core.deploy.quantize import MAX_CALIB_FRAMES, NotWorthQuantizingError
from core.errors import UserError
from core.io.output import claim_output
from core.recover.status import RECONSTRUCTION_KEY

from ..dialogs import ask_yes_no, show_error
from .compress_box import CompressBox
from ..export_job import FORMATS, ExportOutcome, ExportRequest, run_export, target_paths
from ..figures import quality_note, timing_note
from ..job_events import show_job_event
from ..recovery_job import cut_pruned, show_progress
from ..state import AppState
from ..workers import Job

# Long headers on two lines: on one they alone widened their columns enough to push Details off the table.
PSNR_HEADER = "Y-PSNR:\nfile · dense · bicubic"
MS_HEADER = "ms/frame,\nstreamed (H×W)"
COLUMNS = ["File", "Result", "Size", "Precision", "Verified T×H×W\n(max |diff|)", MS_HEADER,
           PSNR_HEADER, "Details"]
PSNR_COLUMN = COLUMNS.index(PSNR_HEADER)
DETAILS_COLUMN = COLUMNS.index("Details")
STALE_COLOR = "#8a8a8a"
DETAILS_MIN_WIDTH = 200     # pixels of the viewport Details keeps (the rest of its text is in the tooltip)
# The columns that give way to Details: a file's name (the Files box above spells it out) and the shapes it was
# verified at (the same three for every ONNX file); the verdicts and figures stay whole.
ELIDABLE_COLUMNS = (COLUMNS.index("File"), COLUMNS.index("Verified T×H×W\n(max |diff|)"))


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
        self.results.setHeaderLabels(COLUMNS)
        self.results_note = QLabel()
        self.results_note.setWordWrap(True)
        self.job: Job | None = None
        self.compress = CompressBox(state)
        self._results_key: tuple | None = None     # which network the rows are of
        self._results_origin = ""
        self._results_where = ""                   # "all 24 frames of demo": what the proofs ran on
        self._results_figures = ""                 # the network's, dense's and bicubic's figures on those frames
        # The columns before Details are sized by _fit_columns (still draggable); Details, the last, fills what is
        # left (elided, whole in the tooltip). A refusal's reason gets a row of its own under the file.
        self.results.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.results.header().setStretchLastSection(True)
        self.results.viewport().installEventFilter(self)
        self._build(browse)
        self.export_button.clicked.connect(self.export)
        for signal in (state.prunedChanged, state.planChanged, state.modelChanged, state.current.recoveryChanged):
            signal.connect(self._refresh)
        self._refresh()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Refit the columns whenever the table's viewport changes width (window resized, scroll bar shown)."""
        if watched is self.results.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)

    def _fit_columns(self) -> None:
        """Each column before Details as wide as its contents and header, the ELIDABLE_COLUMNS giving way (elided,
        whole in the tooltip) so that Details keeps DETAILS_MIN_WIDTH pixels inside the viewport: sized to their
        contents, those columns pushed Details past the right edge of a 1280-pixel screen."""
        header = self.results.header()
        wanted = [max(self.results.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(DETAILS_COLUMN)]
        room = self.results.viewport().width() - DETAILS_MIN_WIDTH
        widths = fit_widths(wanted, room, header.minimumSectionSize(), ELIDABLE_COLUMNS)
        for column, width in enumerate(widths):
            header.resizeSection(column, width)

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
        layout.addWidget(self.results_note)
        layout.addWidget(self.results, 1)
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
        """Say what the rows are of; grey them out once the network they were made from is not the current one."""
        if self._results_key is None:
            self.results_note.setText("Results: each file reloaded and compared with the in-memory network, then "
                                      "run on all frames of the current clip (as Compare runs it)")
            self.results_note.setStyleSheet("")
            return
        stale = self._results_key != self._network_key()
        if stale:
            self.results_note.setText(f"<b>Results of a previous model</b> ({self._results_origin}), not of the "
                                      "current one: export again for it")
            self.results_note.setStyleSheet("color: #b36b00;")
        else:
            where = self._results_where or "all frames of the current clip"
            self.results_note.setText(f"Results for <b>{self._results_origin}</b>: each file reloaded and compared "
                                      f"with the in-memory network, then run on {where}"
                                      + (f"<br>{self._results_figures}" if self._results_figures else ""))
            self.results_note.setStyleSheet("")
        for i in range(self.results.topLevelItemCount()):
            item = self.results.topLevelItem(i)
            if stale:
                for col in range(self.results.columnCount()):
                    item.setForeground(col, QColor(STALE_COLOR))
                font = item.font(0)
                font.setItalic(True)
                item.setFont(0, font)

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

        self.results.clear()
        self._results_key = None
        self._mark_results()
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
        self._results_key, self._results_origin = key, origin
        self._show(results)

    def _show(self, results: list[ExportOutcome]) -> None:
        base = next((o.baseline for o in results if o.baseline is not None), None)
        self._results_where = base.where if base is not None else ""
        self._results_figures = _figures_text(base)
        header = self.results.headerItem()
        header.setToolTip(COLUMNS.index(MS_HEADER), _ms_header_tip(base))
        header.setText(PSNR_COLUMN, _psnr_header(base))
        header.setToolTip(PSNR_COLUMN, _psnr_header(base, long=True))
        for outcome in results:
            item = _result_item(outcome)
            for column in range(DETAILS_COLUMN):     # a column narrowed by _fit_columns shows its text elided
                item.setToolTip(column, item.text(column))
            self.results.addTopLevelItem(item)
            if item.childCount():
                item.setExpanded(True)
                item.child(0).setFirstColumnSpanned(True)
        self._fit_columns()
        self._mark_results()
        self.exportFinished.emit(results)
        refused = [o for o in results if isinstance(o.result, NotWorthQuantizingError)]
        self.state.message.emit("export finished: " + ", ".join(
            f"{o.key} {'ok' if isinstance(o.result, ExportCheck) and o.result.ok else 'REFUSED' if o in refused else 'FAILED'}"
            for o in results))


def fit_widths(wanted: Sequence[int], room: int, least: int, elidable: Sequence[int]) -> list[int]:
    """Column widths within ``room`` pixels where that can be: every column its wanted width, except that the
    widest of the ``elidable`` columns give way to one common cap (never below ``least``), so the narrower of them
    stay whole too."""
    left = room - sum(w for c, w in enumerate(wanted) if c not in elidable)
    shrinking = sorted(wanted[c] for c in elidable)
    for i, width in enumerate(shrinking):
        if width * (len(shrinking) - i) > left:
            cap = max(least, left // (len(shrinking) - i))
            return [min(w, cap) if c in elidable else w for c, w in enumerate(wanted)]
        left -= width
    return list(wanted)


def _clip_frames(clip) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The first frames of the current clip (and its GT): int8 calibration (each file is proven on all frames)."""
    if clip is None:
        return None, None
    n = min(len(clip.lr), MAX_CALIB_FRAMES)
    lr = np.stack([clip.lr[i] for i in range(n)])
    gt = np.stack([clip.gt[i] for i in range(n)]) if clip.gt is not None else None
    return lr, gt


def _size_text(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _psnr_header(base, long: bool = False) -> str:
    """The Y-PSNR column's header: what the three figures are and against what (the note above the table says
    on which frames; the tooltip says both)."""
    if base is None:
        return PSNR_HEADER
    if base.reference == "GT":
        return ("Y-PSNR vs GT:\nfile · dense · bicubic" if not long else
                f"Y-PSNR vs GT on {base.where}: this file, the dense network and bicubic upscaling (mean over "
                "frames; the figures Compare and Study show)")
    return ("Y-PSNR vs dense:\nfile · network · bicubic" if not long else
            f"Y-PSNR on {base.where} (no GT) against the dense network's output, over the whole clip: this file, "
            "the float network it came from and bicubic upscaling (the figures Compare and Study show)")


def _ms_header_tip(base) -> str:
    timed = base.figures.get("pruned") if base is not None else None
    context = timed.timing_context if timed is not None else "this machine's threads, the clip's LR size"
    return (f"Each file run on every frame of the clip, as Compare runs a network: {timing_note(context)}. The "
            "checkpoint holds the float network itself: its time is the network's (Compare's figure).")


def _figures_text(base) -> str:
    """'Float network 21.83 dB, 603 ms/frame · dense … · bicubic … — Y-PSNR vs GT: mean over all 6 frames of
    clip; ms/frame streamed …: the figures Compare and Study show'"""
    if base is None:
        return ""
    parts = []
    for name, label in (("pruned", "float network"), ("dense", "dense"), ("bicubic", "bicubic")):
        f = base.figures.get(name)
        if f is None:
            continue
        quality = f.psnr_text(unit=False) + " dB" if f.psnr is not None else "the reference"
        parts.append(f"{label} {quality}" + (f", {f.ms_text()}" if f.ms_per_frame is not None else ""))
    timed = base.figures.get("pruned")
    notes = [quality_note("GT" if base.reference == "GT" else "dense", base.frames, base.clip)]
    if timed is not None:
        notes.append(timing_note(timed.timing_context))
    return " · ".join(parts) + f" <span style='color:#555555'>({'; '.join(notes)}) — the figures Compare and " \
                               "Study show</span>"


def _psnr_text(outcome: ExportOutcome) -> str:
    """The file's Y-PSNR and, on the same frames, the dense network's (or the float network's, without GT) and
    bicubic's (the header says which)."""
    proof, base = outcome.proof, outcome.baseline
    own = f"{proof.y_psnr:.2f}" if isinstance(proof, FileProof) else "–"
    if base is None:
        return f"{own} dB vs {proof.reference}" if isinstance(proof, FileProof) else ""
    if base.reference == "GT":
        dense = f" · {base.dense:.2f}" if base.dense is not None else " · –"
        return f"{own}{dense} · {base.bicubic:.2f} dB vs GT"
    network = f"{base.pruned:.2f}" if base.pruned is not None else "–"
    return f"{own} · {network} · {base.bicubic:.2f} dB vs dense"


def _shapes_text(shapes) -> str:
    return ", ".join(f"{t}×{h}×{w}" for t, h, w in shapes)


def _result_item(outcome: ExportOutcome) -> QTreeWidgetItem:
    label = FORMATS[outcome.key][0]
    check = outcome.result
    if not isinstance(check, ExportCheck):
        refused = isinstance(check, NotWorthQuantizingError)
        reason = str(check) if isinstance(check, UserError) else f"{type(check).__name__}: {check}"
        item = QTreeWidgetItem([label, "✘ refused" if refused else "✘ failed", "", "", "", "",
                                _psnr_text(outcome) if refused else "", reason])
        item.setForeground(1, QColor("#b00020"))
        item.setForeground(DETAILS_COLUMN, QColor("#b00020"))
        item.setToolTip(DETAILS_COLUMN, reason)
        # the whole reason on a row of its own, in lines that fit a 1280-pixel window
        why = QTreeWidgetItem(item, [textwrap.fill(f"↳ {reason}", 150, subsequent_indent="   ")])
        why.setForeground(0, QColor("#b00020"))
        why.setToolTip(0, reason)
        return item
    verdict = ("✔ verified" if check.ok else "✘ mismatch") if check.max_abs_diff is not None or check.psnr_drop \
        is not None else "✔ written and reloaded"
    verified = ""
    if check.shapes:
        verified = f"{_shapes_text(check.shapes)} ({check.max_abs_diff:.1e})"
    elif check.max_abs_diff is not None:
        verified = f"3×32×32 ({check.max_abs_diff:.1e})"
    proof = outcome.proof
    ms = ""
    details = check.summary()
    if isinstance(proof, FileProof):
        ms = f"{proof.ms_per_frame:.0f} at {proof.size[0]}×{proof.size[1]}"
    elif isinstance(proof, BaseException):
        details = f"proof failed: {type(proof).__name__}: {proof}; {details}"
    if check.psnr_drop is not None:
        kept = ", ".join(check.kept_float) or "none"
        details = f"drop {check.psnr_drop:.2f} dB vs float ({check.detail.split('drop vs ')[-1]}); kept float: {kept}"
    precision = check.precision if check.format in ("onnx", "model") else ""
    if check.flow != "full":
        precision += f", {check.flow} flow"
    psnr = _psnr_text(outcome) if isinstance(proof, FileProof) else ""
    item = QTreeWidgetItem([label, verdict, _size_text(check.size_bytes), precision, verified, ms, psnr, details])
    item.setForeground(1, QColor("#1e7b34" if check.ok else "#b00020"))
    item.setToolTip(7, check.summary())
    return item

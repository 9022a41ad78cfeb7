"""The Export step's results view: one row per file written (verdict, size, precision, the shapes it was verified
at, ms per frame here, Y-PSNR beside the float network's, the dense network's and bicubic's), a row of its own for
a refusal's reason, and the note saying which network the rows are of (greyed once it is not the current one) and
whether a time was measured while another job of the app ran.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHeaderView, QLabel, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from core.deploy import ExportCheck
from core.deploy.check import Int8OverBudget
from core.deploy.measure import FileProof
from core.deploy.quantize import NotWorthQuantizingError
from core.errors import UserError

from ..export_job import FORMATS, ExportOutcome
from ..figures import quality_note, timing_note

# Long headers on two lines: on one they alone widened their columns enough to push Details off the table.
PSNR_HEADER = "Y-PSNR:\nfile · dense · bicubic"
MS_HEADER = "ms/frame,\nstreamed (H×W)"
COLUMNS = ["File", "Result", "Size", "Precision", "Verified T×H×W\n(max |diff|)", MS_HEADER,
           PSNR_HEADER, "Details"]
PSNR_COLUMN = COLUMNS.index(PSNR_HEADER)
MS_COLUMN = COLUMNS.index(MS_HEADER)
DETAILS_COLUMN = COLUMNS.index("Details")
STALE_COLOR = "#8a8a8a"
WARN_COLOR = "#b00020"
DETAILS_MIN_WIDTH = 200     # pixels of the viewport Details keeps (the rest of its text is in the tooltip)
# The columns that give way to Details: a file's name (the Files box above spells it out) and the shapes it was
# verified at (the same three for every ONNX file); the verdicts and figures stay whole.
ELIDABLE_COLUMNS = (COLUMNS.index("File"), COLUMNS.index("Verified T×H×W\n(max |diff|)"))


class ExportResults(QWidget):
    """The note (``note``) above the table of files (``tree``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.key: tuple | None = None          # which network the rows are of
        self._origin = ""
        self._where = ""                       # "all 24 frames of demo": what the proofs ran on
        self._figures = ""                     # the network's, dense's and bicubic's figures on those frames
        self._contended = ""                   # the app's jobs that ran while a time shown was measured
        # The columns before Details are sized by _fit_columns (still draggable); Details, the last, fills what is
        # left (elided, whole in the tooltip). A refusal's reason gets a row of its own under the file.
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.tree.header().setStretchLastSection(True)
        self.tree.viewport().installEventFilter(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note)
        layout.addWidget(self.tree, 1)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Refit the columns whenever the table's viewport changes width (window resized, scroll bar shown)."""
        if watched is self.tree.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_columns()
        return super().eventFilter(watched, event)

    def _fit_columns(self) -> None:
        """Each column before Details as wide as its contents and header, the ELIDABLE_COLUMNS giving way (elided,
        whole in the tooltip) so that Details keeps DETAILS_MIN_WIDTH pixels inside the viewport: sized to their
        contents, those columns pushed Details past the right edge of a 1280-pixel screen."""
        header = self.tree.header()
        wanted = [max(self.tree.sizeHintForColumn(c), header.sectionSizeHint(c)) for c in range(DETAILS_COLUMN)]
        room = self.tree.viewport().width() - DETAILS_MIN_WIDTH
        widths = fit_widths(wanted, room, header.minimumSectionSize(), ELIDABLE_COLUMNS)
        for column, width in enumerate(widths):
            header.resizeSection(column, width)

    def clear(self, current: tuple | None) -> None:
        self.tree.clear()
        self.key = None
        self.mark(current)

    def mark(self, current: tuple | None) -> None:
        """Say what the rows are of; grey them out once the network they were made from (``key``) is not the
        ``current`` one."""
        if self.key is None:
            self.note.setText("Results: each file reloaded and compared with the in-memory network, then "
                              "run on all frames of the current clip (as Compare runs it)")
            self.note.setStyleSheet("")
            return
        stale = self.key != current
        if stale:
            self.note.setText(f"<b>Results of a previous model</b> ({self._origin}), not of the "
                              "current one: export again for it")
            self.note.setStyleSheet("color: #b36b00;")
        else:
            where = self._where or "all frames of the current clip"
            contended = (f"<br><span style='color:{WARN_COLOR}'><b>times not this machine's alone</b>: "
                         f"{self._contended} ran while they were measured; export again to time them alone</span>"
                         if self._contended else "")
            self.note.setText(f"Results for <b>{self._origin}</b>: each file reloaded and compared "
                              f"with the in-memory network, then run on {where}"
                              + (f"<br>{self._figures}" if self._figures else "") + contended)
            self.note.setStyleSheet("")
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if stale:
                for col in range(self.tree.columnCount()):
                    item.setForeground(col, QColor(STALE_COLOR))
                font = item.font(0)
                font.setItalic(True)
                item.setFont(0, font)

    def show(self, results: list[ExportOutcome], key: tuple | None, origin: str) -> None:
        """The rows of one export (of the network ``key``, made from ``origin``); ``mark`` says what they are of."""
        self.key, self._origin = key, origin
        base = next((o.baseline for o in results if o.baseline is not None), None)
        self._where = base.where if base is not None else ""
        self._figures = _figures_text(base)
        self._contended = ", ".join(sorted({job for o in results for job in o.contended}
                                           | {job for f in (base.figures.values() if base is not None else ())
                                              for job in f.contended}))
        header = self.tree.headerItem()
        header.setToolTip(MS_COLUMN, _ms_header_tip(base))
        header.setText(PSNR_COLUMN, _psnr_header(base))
        header.setToolTip(PSNR_COLUMN, _psnr_header(base, long=True))
        for outcome in results:
            item = _result_item(outcome)
            for column in range(DETAILS_COLUMN):     # a column narrowed by _fit_columns shows its text elided
                item.setToolTip(column, item.text(column))
            if outcome.contended:
                item.setForeground(MS_COLUMN, QColor(WARN_COLOR))
                item.setToolTip(MS_COLUMN, f"measured while {', '.join(outcome.contended)} ran: not this "
                                           "machine's time alone")
            self.tree.addTopLevelItem(item)
            if item.childCount():
                item.setExpanded(True)
                item.child(0).setFirstColumnSpanned(True)
        self._fit_columns()


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


def over_budget(check: ExportCheck) -> bool:
    """An int8 file written and checked whose drop is over the budget: the guard's refusal, not a broken file."""
    return check.psnr_drop is not None and check.max_drop is not None and not check.ok


def _result_item(outcome: ExportOutcome) -> QTreeWidgetItem:
    label = FORMATS[outcome.key][0]
    check = outcome.result
    if not isinstance(check, ExportCheck):
        refused = isinstance(check, NotWorthQuantizingError)
        reason = str(check) if isinstance(check, UserError) else f"{type(check).__name__}: {check}"
        over = isinstance(check, Int8OverBudget)
        verdict = "✘ refused" if refused else "✘ over int8 budget" if over else "✘ failed"
        item = QTreeWidgetItem([label, verdict, "", "", "", "",
                                _psnr_text(outcome) if refused else "", reason])
        item.setForeground(1, QColor("#b00020"))
        item.setForeground(DETAILS_COLUMN, QColor("#b00020"))
        item.setToolTip(DETAILS_COLUMN, reason)
        # the whole reason on a row of its own, in lines that fit a 1280-pixel window
        why = QTreeWidgetItem(item, [textwrap.fill(f"↳ {reason}", 150, subsequent_indent="   ")])
        why.setForeground(0, QColor("#b00020"))
        why.setToolTip(0, reason)
        return item
    verdict = ("✔ verified" if check.ok else "✘ over int8 budget" if over_budget(check) else "✘ mismatch") \
        if check.max_abs_diff is not None or check.psnr_drop is not None else "✔ written and reloaded"
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
        drop = f"drop {check.psnr_drop:.2f} dB vs float ({check.detail.split('drop vs ')[-1]})"
        if over_budget(check):
            judged = f", judged {check.charged_drop:.2f} dB" if abs(check.charged_drop - check.psnr_drop) > 5e-3 else ""
            drop = f"over the int8 budget: {drop}{judged}, budget {check.max_drop:.2f} dB"
        details = f"{drop}; kept float: {kept}"
    precision = check.precision if check.format in ("onnx", "model") else ""
    if check.flow != "full":
        precision += f", {check.flow} flow"
    psnr = _psnr_text(outcome) if isinstance(proof, FileProof) else ""
    item = QTreeWidgetItem([label, verdict, _size_text(check.size_bytes), precision, verified, ms, psnr, details])
    item.setForeground(1, QColor("#1e7b34" if check.ok else "#b00020"))
    item.setToolTip(7, check.summary())
    return item

"""The Prune step's results view: what the plan shown does in totals (dense → pruned), this device's predicted time
per frame and what it covers, and which network the plan's is (raw cut, reconstructed, stale).

It only renders values core and ``app.current_plan`` computed; the panel tells it when to (``show``,
``show_recovery``).
"""
from __future__ import annotations

import re

from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout

from core.profile.latency import fps
from core.ssl import Plan

from ..formatting import count
from ..state import AppState

WARN = "#b00020"
STALE = "#b36b00"
GOOD = "#1e7b34"
RAW_CUT = "raw cut — not reconstructed: far below dense, often noise"


class PruneTotals(QGroupBox):
    """Units, parameters, MACs, the estimated speed-up, the predicted time, the network's state and the plan's
    notes, one labelled row each (``labels[key]``)."""

    def __init__(self, state: AppState) -> None:
        super().__init__("Totals (dense → pruned)")
        self.state = state
        self.labels = {key: QLabel("–") for key in ("units", "params", "params_spy", "macs", "speedup", "latency",
                                                    "recovery", "notes")}
        self.measure_button = QPushButton("Measure this device")
        self.measure_button.setToolTip("Time each layer kind and width on this CPU at the clip's size (once, "
                                       "cached): predicted ms per frame for every plan, and latency targets")
        self.latency_note = QLabel()          # what the predicted time covers, a row of its own (full width)
        self.latency_note.setWordWrap(True)
        self.latency_note.setStyleSheet("color: #555555;")
        self.latency_note.setVisible(False)
        self.latency_note.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        for key in ("notes", "recovery", "latency"):
            self.labels[key].setWordWrap(True)
            # A wrapped note needs its lines (a splitter squeezed it to one clipped line), and no more: extra
            # height goes below the rows, not between them.
            self.labels[key].setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self._contended = ""                  # jobs that ran while this device's table was measured
        column = QVBoxLayout(self)
        form = QFormLayout()
        column.addLayout(form)
        column.addStretch(1)
        form.addRow("Units pruned", self.labels["units"])
        form.addRow("Parameters (no SpyNet)", self.labels["params"])
        form.addRow("Parameters (with SpyNet)", self.labels["params_spy"])
        self.macs_label = QLabel("MACs / frame")
        form.addRow(self.macs_label, self.labels["macs"])
        form.addRow("Estimated speed-up", self.labels["speedup"])
        latency_row = QHBoxLayout()
        latency_row.addWidget(self.labels["latency"], 1)
        latency_row.addWidget(self.measure_button)
        form.addRow("Predicted time / frame", latency_row)
        form.addRow(self.latency_note)
        form.addRow("Network", self.labels["recovery"])
        form.addRow("Notes", self.labels["notes"])

    def show(self, plan: Plan) -> None:
        b, a = plan.before, plan.after
        h, w = plan.frame_size
        L = self.labels
        L["units"].setText(f"{plan.units_pruned} of {plan.units_total} ({plan.achieved_ratio:.1%})")
        L["params"].setText(f"{count(b.params)} → {count(a.params)}  (×{b.params / a.params:.2f} smaller)")
        L["params_spy"].setText(f"{count(b.params_with_spynet)} → {count(a.params_with_spynet)}")
        self.macs_label.setText(f"MACs / frame at {h}×{w}")
        L["macs"].setText(f"{count(b.macs)} → {count(a.macs)}  (+ SpyNet {count(a.macs_spynet)})")
        L["speedup"].setText(f"×{plan.mac_ratio:.2f} (network MACs; measured time in Compare)")
        self.show_latency(plan)
        L["notes"].setText("; ".join(plan.notes) or "–")

    def show_recovery(self, running: bool, apply_text: str, reconstruct_on: bool) -> None:
        """Whether the plan's network is the raw cut (noise) or reconstructed, and by how much (``running``: a cut
        job runs; ``apply_text``: the button that would run one)."""
        label = self.labels["recovery"]
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
        if running:
            text, color = f"<b>{RAW_CUT}</b> (reconstructing …)", STALE
        elif current.stale(loaded.model):
            old = current.recovery
            text = (f"<b>{RAW_CUT}</b>; the reconstruction of ratio {old.plan.requested_ratio:.2f} is <b>stale</b> "
                    "(the plan changed)")
            color = STALE
        elif reconstruct_on:
            text, color = f"<b>{RAW_CUT}</b> (not run yet: “{apply_text}”)", WARN
        else:
            text, color = f"<b>{RAW_CUT}</b> (reconstruction is off)", WARN
        label.setText(f"<span style='color:{color}'>{text}</span>")
        label.setToolTip("")

    def measuring(self) -> None:
        self.measure_button.setEnabled(False)
        self.labels["latency"].setText("measuring this device (seconds, once per size) …")

    def measured(self, contended: tuple[str, ...]) -> None:
        """A measurement of this device ended; ``contended``: the app's jobs that ran while it timed."""
        self.measure_button.setEnabled(True)
        self._contended = ", ".join(contended)

    def show_latency(self, plan: Plan) -> None:
        current = self.state.current
        after = current.predicted_ms(plan)
        if after is None:
            self.latency_note.setVisible(False)
            if self.measure_button.isEnabled():
                self.labels["latency"].setText("not measured on this device yet")
            return
        t = current.latency
        before = t.predict_ms(plan.spec_before)
        threads = re.search(r"\((\d+) threads?\)", t.key)
        threads = f"{threads.group(1)} thread{'s' if threads.group(1) != '1' else ''}, " if threads else ""
        self.labels["latency"].setText(f"{before:.0f} → {after:.0f} ms  (×{before / after:.2f})")
        contended = (f"<br><span style='color:{WARN}'><b>measured while {self._contended} ran</b>: the table may be "
                     "slow; “Measure this device” again with nothing else running</span>" if self._contended else "")
        self.latency_note.setText(f"↳ {fps(after):.2f} fps; predicted for the network streamed once warm (no reading "
                                  f"or writing frames), {threads}{t.size[0]}×{t.size[1]} LR (H×W); the measured "
                                  f"time is Compare's{contended}")
        self.latency_note.setVisible(True)
        self.latency_note.setToolTip(
            "Predicted from this device's latency table: the marginal time of one more frame of the network "
            "(SpyNet included) run by the streaming engine as `sr` and Compare run it, without reading or writing "
            "frames, at the thread count the table was measured with. Compare measures the streamed run.")

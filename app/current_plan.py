"""The one owner of "the current plan and its pruned network" (and of this device's latency table).

Why: Prune, Compare, Export and Train all need the plan the user built; each rebuilding the pruned network on
its own made three copies and let them disagree. Here the network is built once per plan, off the GUI thread,
and every consumer gets its own copy (``Module.to`` changes a module in place, so no consumer may share one).

The plan's network is the raw cut until it is reconstructed at the cut (``core.recover``: least squares to the
dense network's activations on the current clip's LR frames); from then on ``network`` hands out the
reconstructed one, so Compare and Export use it. A reconstruction belongs to one cut of one dense network: once
the plan changes it is *stale* (kept and shown as such, never re-run on a slider move: it takes minutes).
"""
from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import torch
from PySide6.QtCore import QObject, Signal

from core.errors import UserError
from core.events import EventSink, RunControl, ignore
from core.models.basicvsr import BasicVSR
from core.profile.latency import LatencyTable, latency_table, table_key, table_path
from core.recover.reconstruct import ReconstructReport, ReconstructSettings, reconstruct
from core.recover.status import RAW_CUT_TRAINING, RECONSTRUCTION_KEY
from core.ssl import Plan, PlanSettings, prune_to_plan

from .alone import measured_alone


def cut_key(plan: Plan) -> tuple:
    """What decides the pruned network of a plan: the units each layer keeps (not the ratio or the frame size
    it was planned at: a re-plan that keeps the same units is the same network)."""
    return tuple((layer.name, tuple(layer.kept)) for layer in plan.layers)


class ReconstructionFailed(UserError):
    """A reconstruction whose result cannot be used (its output diverged); the raw cut stays what it was."""


def check_recovered(model: BasicVSR, report: ReconstructReport, plan: Plan) -> None:
    """Refuse a refit that diverged: non-finite weights, or an output-vs-dense PSNR that is not a number (a refit
    whose activations overflowed scores NaN, which the engine's PSNR reports as infinite)."""
    if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
        raise ReconstructionFailed("reconstruction failed: the refitted weights are not finite; the network is "
                                   "left as it was (the raw cut)")
    if plan.units_pruned > 0 and not math.isfinite(report.psnr_after):
        raise ReconstructionFailed(
            f"reconstruction failed: the refitted network's output diverged on the calibration frames (output vs "
            f"dense: raw cut {report.psnr_raw:.1f} dB → {report.psnr_after} after the refit); the network is left "
            "as it was (the raw cut)")


@dataclass(frozen=True)
class Recovery:
    """A reconstruction at the cut: the refitted network of ``plan``'s cut of one dense network, and its report."""

    plan: Plan
    dense_id: int               # id() of the dense network it was cut from
    model: BasicVSR             # never handed out: consumers get copies
    report: ReconstructReport
    clip: str                   # the calibration clip's name

    def matches(self, dense: BasicVSR, plan: Plan | None) -> bool:
        return plan is not None and self.dense_id == id(dense) and cut_key(self.plan) == cut_key(plan)

    @property
    def recovered(self) -> bool:
        """Closer to the dense output than bicubic upscaling is (when the report says; else assumed)."""
        return bool(getattr(self.report, "recovered", True))

    def figures(self) -> str:
        """"output vs dense: raw cut 9.4 dB → reconstructed 24.1 dB (bicubic 22.0 dB), on the first 15 frames
        (64×112, fitted on) of demo; …" """
        r = self.report
        bicubic = getattr(r, "psnr_bicubic", None)
        bicubic = f" (bicubic {bicubic:.1f} dB)" if bicubic is not None else ""
        held = getattr(r, "heldout_frames", 0)
        held = (f"; {r.psnr_heldout:.1f} dB (bicubic {r.psnr_bicubic_heldout:.1f}) on {held} later frames not "
                f"fitted on" if held else "")
        return (f"output vs dense: raw cut {r.psnr_raw:.1f} dB → reconstructed {r.psnr_after:.1f} dB{bicubic}, "
                f"on {self.covers}{held}")

    @property
    def covers(self) -> str:
        """The frames the reconstruction's figures are on: 'the first 8 frames (64×112, fitted on) of demo' —
        not the clip's every frame, which Compare's figures cover."""
        r = self.report
        return f"the first {r.frames} frames ({r.size[0]}×{r.size[1]}, fitted on) of {self.clip}"


def pruned_meta(recovery: Recovery | None) -> dict[str, Any]:
    """The meta of a network the app cut (``core.recover.status`` reads it as a model file's): a raw cut says
    so, a reconstructed one carries its report."""
    meta: dict[str, Any] = {"training": RAW_CUT_TRAINING}
    if recovery is not None:
        meta[RECONSTRUCTION_KEY] = recovery.report.to_meta()
    return meta


class CurrentPlan(QObject):
    latencyChanged = Signal()          # a latency table arrived (or was dropped for another size)
    recoveryChanged = Signal()         # a reconstruction arrived (or was dropped with its dense network)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.plan: Plan | None = None
        self.latency: LatencyTable | None = None
        self.target_ms: float | None = None          # when the plan was made for a latency target
        self._lock = threading.Lock()
        self._built: tuple[Plan, int, BasicVSR] | None = None   # (plan, id of its dense network, pruned)
        self.recovery: Recovery | None = None        # the latest reconstruction (of this plan, or stale)
        self.reconstruct_at_cut = True               # the Prune step's "Reconstruct at the cut" (default on)
        self.reconstruct_settings = ReconstructSettings()

    @property
    def settings(self) -> PlanSettings | None:
        """What the Train step copies into ``sir.*`` and project files store."""
        return None if self.plan is None else self.plan.settings

    def set(self, plan: Plan | None, target_ms: float | None = None) -> None:
        self.plan, self.target_ms = plan, target_ms

    def network(self, dense: BasicVSR, plan: Plan | None = None) -> BasicVSR:
        """A private copy of the plan's network (default: the current plan): the reconstructed one when this cut
        of ``dense`` has been reconstructed, else the raw cut. Safe to call from worker threads."""
        plan = plan if plan is not None else self.plan
        recovery = self.recovery_for(dense, plan)
        if recovery is not None:
            return copy.deepcopy(recovery.model)
        return self.raw_network(dense, plan)

    def raw_network(self, dense: BasicVSR, plan: Plan | None = None) -> BasicVSR:
        """A private copy of ``dense`` pruned to ``plan`` (default: the current one); built once per plan.

        Safe to call from worker threads.
        """
        plan = plan if plan is not None else self.plan
        if plan is None:
            raise ValueError("no plan to prune to")
        with self._lock:
            built = self._built
            if built is None or built[0] is not plan or built[1] != id(dense):
                built = (plan, id(dense), prune_to_plan(dense, plan))
                self._built = built
            return copy.deepcopy(built[2])

    # -- reconstruction at the cut ---------------------------------------------------------------------
    def recovery_for(self, dense: BasicVSR | None, plan: Plan | None = None) -> Recovery | None:
        """The reconstruction of ``plan``'s cut of ``dense`` (default: the current plan), if there is one."""
        plan = plan if plan is not None else self.plan
        recovery = self.recovery
        return recovery if recovery is not None and dense is not None and recovery.matches(dense, plan) else None

    def stale(self, dense: BasicVSR | None) -> bool:
        """A reconstruction exists, but of another cut than the current plan's (the plan changed since)."""
        return self.recovery is not None and self.recovery_for(dense) is None

    def reconstruct(self, dense: BasicVSR, plan: Plan, frames: np.ndarray, clip: str,
                    settings: ReconstructSettings = ReconstructSettings(), sink: EventSink = ignore,
                    control: RunControl | None = None) -> Recovery:
        """Reconstruct ``plan``'s cut of ``dense`` on ``frames`` (uint8 (T, h, w, 3) LR, no GT); minutes on the
        full network. Worker threads only; the result is kept by ``set_recovery`` (GUI thread)."""
        model, report = reconstruct(dense, self.raw_network(dense, plan), plan, frames, settings, calib_name=clip,
                                    sink=sink, control=control)
        check_recovered(model, report, plan)
        return Recovery(plan, id(dense), model.eval(), report, clip)

    def set_recovery(self, recovery: Recovery | None) -> None:
        self.recovery = recovery
        self.recoveryChanged.emit()

    def keep(self, recovery: Recovery | None, dense: BasicVSR | None) -> bool:
        """Keep a reconstruction a job made (GUI thread), unless the dense network it was cut from is no longer
        the loaded one; True if it is the current one now."""
        if recovery is None or dense is None or recovery.dense_id != id(dense):
            return False
        if recovery is not self.recovery:
            self.set_recovery(recovery)
        return True

    # -- latency -------------------------------------------------------------------------------------
    def predicted_ms(self, plan: Plan | None = None) -> float | None:
        """This device's predicted ms per frame for the plan's network, when a table for its size is loaded."""
        plan = plan if plan is not None else self.plan
        t = self.latency
        if plan is None or t is None or tuple(t.size) != tuple(plan.frame_size):
            return None
        if t.num_feat != plan.spec_before.num_feat or t.bidirectional != plan.spec_before.bidirectional:
            return None
        return t.predict_ms(plan.spec_after)

    def set_latency(self, table: LatencyTable | None) -> None:
        self.latency = table
        self.latencyChanged.emit()

    @staticmethod
    def latency_job(size: tuple[int, int], num_feat: int, bidirectional: bool,
                    measure: bool) -> Callable[[object], tuple[LatencyTable | None, tuple[str, ...]]]:
        """Work for a background job: (the cached table (``measure=False``) or a fresh measurement, the app's jobs
        that ran while it was measured). A measurement waits until no other job of the app runs (``app.alone``);
        one that another job disturbed anyway is not kept on disk, so the next "Measure this device" measures."""
        def work(_job: object) -> tuple[LatencyTable | None, tuple[str, ...]]:
            device = torch.device("cpu")
            path = table_path(table_key(device, size, num_feat, bidirectional))
            if path.is_file() or not measure:
                return (latency_table(device, size, num_feat, bidirectional) if path.is_file() else None), ()
            with measured_alone() as contended:
                table = latency_table(device, size, num_feat, bidirectional)
                contended = tuple(sorted(contended))
            if contended:
                path.unlink(missing_ok=True)
            return table, contended
        return work

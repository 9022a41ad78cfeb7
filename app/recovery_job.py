"""The pruned network the app cuts from the current plan, reconstructed at the cut when asked — run in a job.

One place for the three steps that cut (Prune's button, and Compare and Export when no pruned network exists yet):
the cut, then, with "Reconstruct at the cut" on, ``core.recover.reconstruct`` calibrated on the current clip's
LR frames (no GT needed). The engine's ``Progress(stage="reconstruct")`` events reach the window through the
job, and its ``RunControl`` cancels it.
"""
from __future__ import annotations

import copy

from core.events import Log, Progress
from core.models.basicvsr import BasicVSR
from core.data.calib import CalibrationError
from core.recover.reconstruct import STAGE, ReconstructSettings
from core.ssl import Plan

from .clips import ClipPair, calibration_frames
from .formatting import seconds
from .current_plan import CurrentPlan, ReconstructionFailed, Recovery, pruned_meta
from .state import PrunedModel
from .workers import Job

__all__ = ["STAGE", "cut_origin", "cut_pruned", "is_reconstruct_progress", "show_progress",
           "show_reconstruct_progress"]


def cut_origin(plan: Plan, recovery: Recovery | None) -> str:
    how = f"reconstructed on {recovery.clip}" if recovery is not None else "raw cut (zero-shot)"
    return f"plan {plan.requested_ratio:.2f} {plan.criterion}, {how}"


def is_reconstruct_progress(event: object) -> bool:
    return isinstance(event, Progress) and event.stage == STAGE


def show_progress(bar, done: int, total: int) -> None:
    """A consumer's own progress on ``bar`` (a QProgressBar), in its plain format."""
    if bar.format() != "%p%":
        bar.setFormat("%p%")
    bar.setRange(0, total)
    bar.setValue(done)


def show_reconstruct_progress(bar, event: Progress) -> None:
    """The reconstruction a consumer waits for before its own work (Compare, Export), on its ``bar``."""
    bar.setRange(0, max(event.total, 1))
    bar.setValue(event.iteration)
    bar.setFormat(f"reconstructing the cut first: layer %v of %m · ETA {seconds(event.eta_seconds)}")


def cut_pruned(job: Job, current: CurrentPlan, dense: BasicVSR, plan: Plan, clip: ClipPair | None,
               settings: ReconstructSettings, reconstruct: bool,
               strict: bool = True) -> tuple[PrunedModel, Recovery | None]:
    """The plan's pruned network for a consumer (its own copy) and the reconstruction made for it, if any.

    ``reconstruct``: refit at the cut unless this cut is already reconstructed (then that one is used); without
    it, the raw cut.
    ``strict``: a clip that cannot calibrate is an error; otherwise the raw cut is used and a ``Log`` says why.
    Worker thread; the caller keeps the returned ``Recovery`` (``CurrentPlan.set_recovery``) in the GUI thread.
    """
    done = current.recovery_for(dense, plan)
    if not reconstruct:              # "Prune now (zero-shot)": the raw cut, even where a reconstruction exists
        recovery = None
    elif done is not None:
        recovery = done
    else:
        try:
            if clip is None:
                raise CalibrationError("reconstruction calibrates on the current clip: open a clip first "
                                       "(or untick “Reconstruct at the cut”)")
            frames = calibration_frames(clip, settings.frames_to_read)
            recovery = current.reconstruct(dense, plan, frames, clip.name, settings, sink=job.emit_event,
                                           control=job.control)
        except (CalibrationError, ReconstructionFailed) as exc:
            if strict:
                raise
            job.emit_event(Log(f"not reconstructed, the raw cut is used: {exc}", "warning"))
            recovery = None
    # a private copy either way (the Recovery keeps its own, never handed out)
    model = current.raw_network(dense, plan) if recovery is None else copy.deepcopy(recovery.model)
    return PrunedModel(model, cut_origin(plan, recovery), plan, meta=pruned_meta(recovery)), recovery

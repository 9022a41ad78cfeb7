"""What ``compress`` built and timed, and the report it writes about them (``FILE.report.json``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.basicvsr import BasicVSR
from ..profile.cpu import cpu_flags
from .judge import ClipQuality
from .speed import SpeedMeasure
from .speed_plan import SpeedPlan

SPEED_SLACK = 0.97             # a file within 3 % of the target counts as reaching it (timing noise)


@dataclass(frozen=True)
class Candidate:
    """One built alternative: its plan, the file's measured speed and held-out quality, and the guard's verdict."""

    plan: SpeedPlan
    speed: SpeedMeasure
    quality: tuple[ClipQuality, ...]
    guard: Any                              # core.deploy.check.ExportCheck of its int8 file
    path: Path
    model: BasicVSR = field(repr=False)     # the float network the file was quantized from
    recovery: dict[str, Any] | None = None          # the model file meta of its recovery (reconstruction, distillation)
    finish_seconds: float = 0.0             # quantizing, timing and judging it took this long

    def reaches(self, speedup: float) -> bool:
        return self.speed.speedup >= speedup * SPEED_SLACK

    def to_json(self) -> dict[str, Any]:
        plan = self.plan.plan
        return {"recipe": self.plan.rung.name, "flow": self.plan.rung.flow,
                "predicted_ms_per_frame": round(self.plan.predicted_ms, 2), "int8_gain_assumed": round(self.plan.gain, 3),
                "measured": self.speed.to_json(), "heldout": [q.to_json() for q in self.quality],
                "mac_ratio": None if plan is None else round(plan.mac_ratio, 3),
                "params": self.model.count_parameters(include_spynet=False),
                "guard": guard_json(self.guard), "recovery": self.recovery}


@dataclass(frozen=True)
class Probe:
    """A plan timed before it was built (``int8_timing_probe``: its widths in int8, weights not recovered)."""

    plan: SpeedPlan
    speed: SpeedMeasure

    def to_json(self) -> dict[str, Any]:
        plan = self.plan.plan
        return {"recipe": self.plan.rung.name, "mac_ratio": None if plan is None else round(plan.mac_ratio, 3),
                "predicted_ms_per_frame": round(self.plan.predicted_ms, 2),
                "int8_gain_assumed": round(self.plan.gain, 3), "measured": self.speed.to_json()}


def guard_json(check: Any) -> dict[str, Any]:
    """The int8 guard's numbers as the report records them."""
    return {"verified": check.ok, "predicted_drop_db": _round(check.charged_drop),
            "measured_drop_db": _round(check.psnr_drop), "detail": check.detail,
            "max_drop_db": check.max_drop, "kept_float": list(check.kept_float),
            "fidelity_db": _round(check.fidelity_db)}


def _round(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 3)


def build_report(result: Any, req: Any) -> dict[str, Any]:
    """``FILE.report.json``: what was asked (``req``: a ``CompressRequest``), what was tried, what was chosen, measured
    here (``result``: a ``CompressResult``; typed loosely, as the run module imports this one)."""
    from ..profile.latency import device_name

    chosen = result.chosen
    plan = chosen.plan.plan
    widths = [] if plan is None else [{"layer": l.name, "kept": l.n_kept, "total": l.total} for l in plan.layers]
    return {"file": str(result.outputs["onnx"]), "model": str(req.model), "footage": result.footage.to_json(),
            "asked": {"speedup": req.speedup, "target_ms": req.target_ms, "size": list(chosen.speed.size),
                      "max_drop_db": req.max_drop},
            "machine": {"cpu": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
                        "cpu_flags": cpu_flags()},
            "chosen": chosen.to_json(), "widths": widths, "tried": [c.to_json() for c in result.tried],
            "timed_before_building": [p.to_json() for p in result.probes],
            "seconds": round(result.seconds, 1), "cpu_seconds": round(result.cpu_seconds, 1),
            "steps": result.steps.to_json(), "distillation": result.distillation}

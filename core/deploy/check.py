"""What verification of a written export found: one record per file, shown by the CLI and the Export step."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError


class Int8OverBudget(UserError):
    """An int8 file whose judged drop exceeds the budget even with the layers the guard kept float (nothing is
    written)."""


# -- the int8 guard's decision (pure numbers; core.deploy.quantize measures them) ---------------------------------
def implied_drop(quality_db: float, fidelity_db: float) -> float:
    """The Y-PSNR drop (dB, >= 0) that an error of ``fidelity_db`` (int8 output vs float output) costs a model
    whose own Y-PSNR against the reference is ``quality_db``, the two errors taken as independent:
    ``10 log10(1 + 10^((quality - fidelity) / 10))``. 0 for a file identical to float; infinite when the float
    output is the reference itself but the int8 one is not."""
    if math.isnan(quality_db) or math.isnan(fidelity_db):
        return math.inf
    if fidelity_db == math.inf:
        return 0.0
    if quality_db == math.inf:
        return math.inf
    return 10.0 * math.log10(1.0 + 10.0 ** ((quality_db - fidelity_db) / 10.0))


def judged_drop(drop: float, fidelity_drop: float | None = None) -> float:
    """What the guard holds against ``--max-drop``: the measured drop by its SIZE (an int8 file "better" than
    float by 11 dB is not within a 0.3 dB budget: it says the reference is meaningless, not that int8 helped),
    and never less than the drop its fidelity to the float output implies (``implied_drop``). NaN is infinite."""
    fidelity_drop = 0.0 if fidelity_drop is None else fidelity_drop
    if math.isnan(drop) or math.isnan(fidelity_drop):
        return math.inf
    return max(abs(drop), fidelity_drop)


def within_budget(drop: float, max_drop: float, fidelity_drop: float | None = None) -> bool:
    """The guard's verdict: ``judged_drop(drop, fidelity_drop) <= max_drop``. A negative drop never passes by its
    sign."""
    return judged_drop(drop, fidelity_drop) <= max_drop


MAX_NAMED_LAYERS = 4     # a summary names at most this many float layers; --json and the report list them all


@dataclass(frozen=True)
class ExportCheck:
    """The verdict on one written file.

    ``max_abs_diff`` is the largest difference between the reloaded file and the PyTorch network over every
    input in ``shapes`` ((frames, height, width) of the LR clips it was run at), or None for files that have no
    numeric output (the HDF5 report). For int8 files the difference is not a meaningful check; ``psnr_drop``
    (Y-PSNR of the float model minus the int8 one, on the calibration frames) is, and ``kept_float`` names the
    layers the accuracy guard left in float. ``fidelity_db`` is the Y-PSNR of the int8 file's output against the
    float model's on those frames (``fidelity_lr_db``: the same after the ×4 downscale, the LR-consistency
    direction), and ``judged_drop`` what the guard held against ``max_drop`` (``judged_drop()``): the file is
    within budget by that, never by a negative drop.
    """

    path: Path
    format: str
    max_abs_diff: float | None
    tolerance: float | None
    detail: str = ""
    precision: str = "fp32"
    shapes: tuple[tuple[int, int, int], ...] = ()
    psnr_drop: float | None = None
    max_drop: float | None = None
    kept_float: tuple[str, ...] = field(default=())
    flow: str = "full"                # SpyNet's resolution in the file (core.models.spynet.FLOW_RESOLUTIONS)
    fidelity_db: float | None = None       # int8: Y-PSNR of its output vs the float model's (SR frames)
    fidelity_lr_db: float | None = None    # int8: the same after the x4 downscale (LR-consistency direction)
    judged_drop: float | None = None       # int8: what the guard held against max_drop

    @property
    def charged_drop(self) -> float | None:
        """The drop this file is judged by (int8): ``judged_drop`` when the guard gave it, else the measured
        drop by its size."""
        if self.psnr_drop is None:
            return None
        return self.judged_drop if self.judged_drop is not None else judged_drop(self.psnr_drop)

    @property
    def ok(self) -> bool:
        if self.psnr_drop is not None and self.max_drop is not None:
            return self.charged_drop <= self.max_drop
        return self.max_abs_diff is None or self.max_abs_diff <= self.tolerance

    @property
    def size_bytes(self) -> int | None:
        return self.path.stat().st_size if self.path.is_file() else None

    def shapes_text(self) -> str:
        return ", ".join(f"{t}x{h}x{w}" for t, h, w in self.shapes)

    def summary(self) -> str:
        if self.psnr_drop is not None:
            kept = (", ".join(self.kept_float) if len(self.kept_float) <= MAX_NAMED_LAYERS else
                    f"{len(self.kept_float)} layers (--json lists them)") if self.kept_float else "none"
            verdict = "verified" if self.ok else "OVER BUDGET"
            fidelity = ""
            if self.fidelity_db is not None:
                lr = f", {self.fidelity_lr_db:.2f} dB downscaled" if self.fidelity_lr_db is not None else ""
                fidelity = f"; fidelity to float {self.fidelity_db:.2f} dB Y-PSNR{lr}"
            judged = (f", judged {self.charged_drop:.3f} dB" if abs(self.charged_drop - self.psnr_drop) > 5e-4
                      else "")
            return (f"{self.format} ({self.precision}): wrote {self.path}; {verdict}, Y-PSNR drop "
                    f"{self.psnr_drop:.3f} dB vs float{judged} (budget {self.max_drop:.2f}){fidelity}; kept float: "
                    f"{kept} {self.detail}").rstrip()
        if self.max_abs_diff is None:
            return f"{self.format}: wrote {self.path} ({self.detail})"
        verdict = "verified" if self.ok else "MISMATCH"
        at = f" at {self.shapes_text()} (frames x h x w)" if self.shapes else ""
        return (f"{self.format} ({self.precision}): wrote {self.path}; {verdict}, max |diff| "
                f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e}){at} {self.detail}").rstrip()

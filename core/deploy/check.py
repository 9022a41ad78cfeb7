"""What verification of a written export found: one record per file, shown by the CLI and the Export step."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ExportCheck:
    """The verdict on one written file.

    ``max_abs_diff`` is the largest difference between the reloaded file and the PyTorch network over every
    input in ``shapes`` ((frames, height, width) of the LR clips it was run at), or None for files that have no
    numeric output (the HDF5 report). For int8 files the difference is not a meaningful check; ``psnr_drop``
    (Y-PSNR of the float model minus the int8 one, on the calibration frames) is, and ``kept_float`` names the
    layers the accuracy guard left in float.
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

    @property
    def ok(self) -> bool:
        if self.psnr_drop is not None and self.max_drop is not None:
            return self.psnr_drop <= self.max_drop
        return self.max_abs_diff is None or self.max_abs_diff <= self.tolerance

    @property
    def size_bytes(self) -> int | None:
        return self.path.stat().st_size if self.path.is_file() else None

    def shapes_text(self) -> str:
        return ", ".join(f"{t}x{h}x{w}" for t, h, w in self.shapes)

    def summary(self) -> str:
        if self.psnr_drop is not None:
            kept = ", ".join(self.kept_float) if self.kept_float else "none"
            verdict = "verified" if self.ok else "OVER BUDGET"
            return (f"{self.format} ({self.precision}): wrote {self.path}; {verdict}, Y-PSNR drop "
                    f"{self.psnr_drop:.3f} dB vs float (budget {self.max_drop:.2f}); kept float: {kept} "
                    f"{self.detail}").rstrip()
        if self.max_abs_diff is None:
            return f"{self.format}: wrote {self.path} ({self.detail})"
        verdict = "verified" if self.ok else "MISMATCH"
        at = f" at {self.shapes_text()} (frames x h x w)" if self.shapes else ""
        return (f"{self.format} ({self.precision}): wrote {self.path}; {verdict}, max |diff| "
                f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e}){at} {self.detail}").rstrip()

"""What a ``compress`` call is asked (``CompressRequest``), the refusals that cost nothing (checked and every
output claimed before any work), and where its candidates are built."""
from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..io.output import claim_output
from .footage import DEFAULT_CALIB_FRAMES, DEFAULT_JUDGED_FRAMES

DEFAULT_MINUTES = 7.0          # about 15 CPU-minutes on 2 cores
REPORT_SUFFIX, PICTURE_SUFFIX = ".report.json", ".report.png"


@dataclass(frozen=True)
class CompressRequest:
    """What the user asked for; every path and number is checked before any work."""

    model: str
    footage: tuple[str, ...]
    out: str
    speedup: float | None = None
    target_ms: float | None = None
    size: tuple[int, int] | None = None        # LR size the speed is planned and timed at (default: the footage's)
    pth: str | None = None
    minutes: float = DEFAULT_MINUTES           # wall-clock budget; distillation gets what the other steps leave
    calib_frames: int = DEFAULT_CALIB_FRAMES
    judge_frames: int = DEFAULT_JUDGED_FRAMES
    max_drop: float = 0.3
    overwrite: bool = False
    keep: str | None = None                    # a new folder that keeps every candidate built (.onnx and .pth)

    def outputs(self) -> dict[str, Path]:
        out = Path(self.out)
        stem = out.with_suffix("")
        paths = {"onnx": out, "report": Path(f"{stem}{REPORT_SUFFIX}"), "picture": Path(f"{stem}{PICTURE_SUFFIX}")}
        if self.pth is not None:
            paths["pth"] = Path(self.pth)
        return paths


def check_request(req: CompressRequest) -> dict[str, Path]:
    """Refusals that cost nothing: the speed asked for, and every output (claimed before any work)."""
    if (req.speedup is None) == (req.target_ms is None):
        raise UserError("give one of --speedup S or --target-ms X")
    if req.speedup is not None and not req.speedup > 1.0:
        raise UserError(f"--speedup must be above 1 (times the dense network's speed), got {req.speedup}")
    if req.target_ms is not None and req.size is None:
        raise UserError("--target-ms needs --size HxW: the LR frame size the time is for")
    if Path(req.out).suffix.lower() != ".onnx":
        raise UserError(f"--out {req.out}: compress writes an ONNX file; name it *.onnx")
    if req.pth is not None and Path(req.pth).suffix.lower() not in (".pth", ".pt"):
        raise UserError(f"--pth {req.pth}: name the PyTorch model file *.pth")
    if not req.max_drop > 0:
        raise UserError(f"--max-drop must be a positive number of dB, got {req.max_drop}")
    inputs = [req.model, *req.footage]
    outputs = req.outputs()
    for path in outputs.values():
        claim_output(path, inputs=inputs, overwrite=req.overwrite)
    if len({p.resolve() for p in outputs.values()}) != len(outputs):
        raise UserError("--out and --pth name the same file")
    if req.keep is not None:
        claim_output(req.keep, kind="folder", inputs=inputs)
    return outputs


@contextlib.contextmanager
def work_folder(keep: str | None) -> Iterator[str]:
    """Where candidates are built: the folder to keep them in, or a private temporary one removed after."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="ssl-vsr-compress-") as tmp:
            yield tmp
        return
    Path(keep).mkdir(parents=True, exist_ok=True)
    yield keep

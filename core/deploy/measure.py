"""The proof a written file gives on the user's own clip: ms per frame on this machine and Y-PSNR.

Y-PSNR is against ground truth when the clip has it, else against the float PyTorch network (then it says how far
the file is from the network it came from, not how good either is).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..io.frames import frames_to_tensor, tensor_to_frames
from ..models.basicvsr import BasicVSR
from ..metrics import y_psnr_frames

PROOF_FRAMES = 8        # frames of the current clip a file is timed and scored on (kept short: it runs per file)


@dataclass(frozen=True)
class FileProof:
    ms_per_frame: float
    y_psnr: float
    reference: str            # "GT" or "float PyTorch"
    frames: int
    size: tuple[int, int]     # LR (h, w) it ran at


def _run_file(path: Path, lr: torch.Tensor) -> tuple[torch.Tensor, float]:
    if path.suffix.lower() == ".onnx":
        from .runtime import load_clip

        run = load_clip(path)
    else:
        from ..io.checkpoint import load_checkpoint

        run = load_checkpoint(path).model.eval().to(memory_format=torch.channels_last)
    with torch.no_grad():
        start = time.perf_counter()
        out = run(lr)
        return out, time.perf_counter() - start


@torch.no_grad()
def prove_file(path: str | Path, model: BasicVSR, lr_frames: np.ndarray, gt_frames: np.ndarray | None = None,
               max_frames: int = PROOF_FRAMES) -> FileProof:
    """Run the written file at ``path`` on the first ``max_frames`` LR frames; time it and score it."""
    lr_frames = lr_frames[:max_frames]
    lr = frames_to_tensor(lr_frames)
    out, seconds = _run_file(Path(path), lr)
    sr = tensor_to_frames(out)
    if gt_frames is not None:
        ref, name = np.asarray(gt_frames[:len(sr)]), "GT"
    else:
        from .onnx_export import deploy_copy

        ref, name = tensor_to_frames(deploy_copy(model)(lr)), "float PyTorch"
    return FileProof(1000.0 * seconds / len(sr), y_psnr_frames(sr, ref), name, len(sr), lr_frames.shape[1:3])

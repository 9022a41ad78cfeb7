"""Quality where the user meets it, without GT: the file's output on frames calibration never read, against the
dense network's output, beside bicubic upscaling's against the same."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..metrics import bicubic_upscale, y_psnr_frames
from ..stream import stream_frames
from .footage import JudgedClip


@dataclass(frozen=True)
class ClipQuality:
    """Y-PSNR (mean over frames) of the file and of bicubic upscaling against the dense network, on one clip."""

    name: str
    kind: str
    frames: tuple[int, int]        # [first, end) in its source
    vs_dense_db: float
    bicubic_vs_dense_db: float

    @property
    def margin_db(self) -> float:
        """How much closer to the dense network the file is than bicubic upscaling (dB)."""
        return self.vs_dense_db - self.bicubic_vs_dense_db

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "frames": list(self.frames),
                "psnr_vs_dense_db": round(self.vs_dense_db, 3),
                "bicubic_psnr_vs_dense_db": round(self.bicubic_vs_dense_db, 3),
                "margin_over_bicubic_db": round(self.margin_db, 3)}

    @classmethod
    def from_json(cls, data: Any) -> "ClipQuality | None":
        """A judgement as ``to_json`` wrote it (into the report and the file's ``ssl_vsr.heldout``), or None when
        it is not one (a file's metadata is read, never trusted to be well formed)."""
        try:
            frames = tuple(int(v) for v in data["frames"])
            quality = cls(str(data["name"])[:200], str(data["kind"])[:40], (frames[0], frames[1]),
                          float(data["psnr_vs_dense_db"]), float(data["bicubic_psnr_vs_dense_db"]))
        except (KeyError, TypeError, ValueError, IndexError, OverflowError):
            return None
        return quality if len(frames) == 2 and np.isfinite([quality.vs_dense_db, quality.bicubic_vs_dense_db]).all() \
            else None

    def line(self) -> str:
        return (f"{self.kind} {self.name} [{self.frames[0]}, {self.frames[1]}): {self.vs_dense_db:.2f} dB Y-PSNR vs "
                f"the dense network's output (bicubic upscaling {self.bicubic_vs_dense_db:.2f} dB)")


def sr_frames(network: Any, frames: np.ndarray) -> np.ndarray:
    """uint8 SR frames of ``network`` (a ``BasicVSR`` or an onnxruntime stepper), streamed in flat memory."""
    return np.stack(list(stream_frames(network, frames)))


def dense_references(dense: Any, clips: Sequence[JudgedClip]) -> tuple[np.ndarray, ...]:
    """The dense network's SR frames of every judged clip (computed once, compared with every candidate)."""
    return tuple(sr_frames(dense, clip.frames) for clip in clips)


def judge(network: Any, clips: Sequence[JudgedClip], references: Sequence[np.ndarray]) -> tuple[ClipQuality, ...]:
    """``network`` against the dense network's output (``references``) on every judged clip."""
    return tuple(ClipQuality(clip.name, clip.kind, (clip.first, clip.first + len(clip.frames)),
                             y_psnr_frames(sr_frames(network, clip.frames), reference),
                             y_psnr_frames(bicubic_upscale(clip.frames), reference))
                 for clip, reference in zip(clips, references))

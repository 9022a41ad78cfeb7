"""PSNR and SSIM exactly as BasicSR computes them (``basicsr/metrics/psnr_ssim.py``).

Published VSR tables are BasicSR/MATLAB numbers: Y channel of BT.601 ``rgb2ycbcr``, Gaussian-window SSIM on
the valid region, optional border crop. Any deviation (other Y weights, uniform window, rounding Y) moves the
score by more than the differences between pruned models, so we copy the recipe including its dtypes.

Inputs are uint8 images (or floats in [0, 255]), HWC or CHW, RGB (this project's frames) or BGR (OpenCV).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import cv2
import numpy as np

from core.errors import UserError

__all__ = [
    "MetricShapeError",
    "psnr",
    "ssim",
    "y_channel",
    "ClipScore",
    "MeanScore",
    "clip_metrics",
    "mean_over_clips",
    "y_psnr_frames",
    "y_psnr_clip",
    "bicubic_upscale",
]

InputOrder = Literal["HWC", "CHW"]
ChannelOrder = Literal["rgb", "bgr"]


class MetricShapeError(UserError, ValueError):
    """SR and reference images differ in shape (caught as UserError by the CLI/GUI, ValueError by callers)."""


def _prepare(img: np.ndarray, input_order: str) -> np.ndarray:
    arr = np.asarray(img)
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"expected a 2-D or 3-D image, got shape {arr.shape}")
    return arr.transpose(1, 2, 0) if input_order == "CHW" else arr


def y_channel(img: np.ndarray, channel_order: ChannelOrder = "rgb") -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma on the [0, 255] scale, not rounded: ``16 + (65.481 R + 128.553 G + 24.966 B)``.

    Follows BasicSR's dtypes to the bit (float32 /255, float64 dot, float32 result, x255 in float32) so the
    scores match its tables to ~1e-12 rather than ~1e-7. HxWx3 in, HxWx1 float32 out.
    """
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    x = img.astype(np.float32) / 255.0
    coeffs = [65.481, 128.553, 24.966] if channel_order == "rgb" else [24.966, 128.553, 65.481]
    y = np.dot(x, coeffs) + 16.0
    y = (y / 255.0).astype(np.float32)
    return y[..., None] * 255.0


def _pair(
    img: np.ndarray, ref: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool, channel_order: str
) -> tuple[np.ndarray, np.ndarray]:
    """Shape check, reorder to HWC, crop the border, optionally take Y; float64 out."""
    a, b = np.asarray(img), np.asarray(ref)
    if a.shape != b.shape:
        raise MetricShapeError(f"image shapes differ: {a.shape} vs reference {b.shape}")
    a, b = _prepare(a, input_order), _prepare(b, input_order)
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border, ...]
        b = b[crop_border:-crop_border, crop_border:-crop_border, ...]
        if a.size == 0:
            raise MetricShapeError(f"crop_border {crop_border} leaves nothing of a {a.shape} image")
    if test_y_channel:
        if a.shape[2] != 3:
            raise ValueError(f"the Y channel needs 3-channel images, got {a.shape[2]} channels")
        a, b = y_channel(a, channel_order), y_channel(b, channel_order)
    return a.astype(np.float64), b.astype(np.float64)


def psnr(
    img: np.ndarray,
    ref: np.ndarray,
    crop_border: int = 0,
    test_y_channel: bool = False,
    input_order: InputOrder = "HWC",
    channel_order: ChannelOrder = "rgb",
) -> float:
    """PSNR in dB on the [0, 255] scale (BasicSR ``calculate_psnr``); ``inf`` for identical images."""
    a, b = _pair(img, ref, crop_border, input_order, test_y_channel, channel_order)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 * 255.0 / mse))


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of one float64 channel: 11x11 Gaussian (sigma 1.5) window, valid region only."""
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    window = np.outer(k, k.transpose())
    mu1 = cv2.filter2D(a, -1, window)[5:-5, 5:-5]
    mu2 = cv2.filter2D(b, -1, window)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = cv2.filter2D(a**2, -1, window)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = cv2.filter2D(b**2, -1, window)[5:-5, 5:-5] - mu2_sq
    sigma12 = cv2.filter2D(a * b, -1, window)[5:-5, 5:-5] - mu1_mu2
    num = (2 * mu1_mu2 + c1) * (2 * sigma12 + c2)
    den = (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    return float((num / den).mean())


def ssim(
    img: np.ndarray,
    ref: np.ndarray,
    crop_border: int = 0,
    test_y_channel: bool = False,
    input_order: InputOrder = "HWC",
    channel_order: ChannelOrder = "rgb",
) -> float:
    """SSIM (BasicSR ``calculate_ssim``): per-channel Gaussian-window SSIM, mean over channels."""
    a, b = _pair(img, ref, crop_border, input_order, test_y_channel, channel_order)
    if a.shape[0] <= 10 or a.shape[1] <= 10:
        raise MetricShapeError(f"SSIM needs images larger than 10x10 after cropping, got "
                               f"{a.shape[0]}x{a.shape[1]} (HxW)")
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))


# --------------------------------------------------------------------------------------------- per clip
@dataclass(frozen=True)
class ClipScore:
    """Per-frame PSNR/SSIM of one clip; the clip score is the mean over its frames (as in VSR papers)."""

    name: str
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)

    @property
    def mean_psnr(self) -> float:
        return float(np.mean(self.psnr)) if self.psnr else math.nan

    @property
    def mean_ssim(self) -> float:
        return float(np.mean(self.ssim)) if self.ssim else math.nan


@dataclass(frozen=True)
class MeanScore:
    """A dataset score: mean over clips of each clip's mean over frames (clips weigh equally)."""

    psnr: float
    ssim: float
    clips: int


def clip_metrics(
    sr_frames: Sequence[np.ndarray] | np.ndarray,
    gt_frames: Sequence[np.ndarray] | np.ndarray,
    crop_border: int = 0,
    y: bool = True,
    name: str = "",
    channel_order: ChannelOrder = "rgb",
) -> ClipScore:
    """Score every frame of a clip (T,H,W,3 arrays or lists of HxWx3); frame counts must agree."""
    if len(sr_frames) != len(gt_frames):
        raise MetricShapeError(
            f"clip {name or '?'}: {len(sr_frames)} SR frames but {len(gt_frames)} reference frames"
        )
    p, s = [], []
    for i, (sr, gt) in enumerate(zip(sr_frames, gt_frames)):
        if np.shape(sr) != np.shape(gt):
            raise MetricShapeError(
                f"clip {name or '?'} frame {i}: SR shape {np.shape(sr)} differs from reference {np.shape(gt)}"
            )
        p.append(psnr(sr, gt, crop_border, y, channel_order=channel_order))
        s.append(ssim(sr, gt, crop_border, y, channel_order=channel_order))
    return ClipScore(name=name, psnr=p, ssim=s)


def mean_over_clips(scores: Sequence[ClipScore]) -> MeanScore:
    """Mean over clips of per-clip frame means (what REDS4/Vid4 tables report)."""
    if not scores:
        raise ValueError("mean_over_clips needs at least one clip score")
    return MeanScore(
        psnr=float(np.mean([c.mean_psnr for c in scores])),
        ssim=float(np.mean([c.mean_ssim for c in scores])),
        clips=len(scores),
    )


# -- clips of frames (the int8 guard, compress, the benches) -------------------------------------------------------
def y_psnr_frames(sr: np.ndarray, ref: np.ndarray) -> float:
    """Mean over frames of the Y-PSNR of uint8 (T, H, W, 3) frames against a reference of the same shape."""
    return float(np.mean([psnr(a, b, test_y_channel=True) for a, b in zip(sr, ref)]))


def y_psnr_clip(a: np.ndarray, b: np.ndarray) -> float:
    """Y-PSNR of two uint8 (T, H, W, 3) clips over all their pixels at once (inf only if they are identical)."""
    return psnr(a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:]), test_y_channel=True)


def bicubic_upscale(lr_frames: np.ndarray, scale: int = 4) -> np.ndarray:
    """uint8 (T, h, w, 3) frames upscaled ×``scale`` by MATLAB's bicubic ``imresize``: the floor any SR model
    has to beat."""
    from core.data.degrade import imresize, to_uint8

    return to_uint8(imresize(lr_frames.astype(np.float32) / 255.0, scale))

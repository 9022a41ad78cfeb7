"""MATLAB-compatible degradations (BI and BD) for making low-resolution training and test frames.

The published BasicVSR numbers were measured on LR frames made in MATLAB, so the LR we make on the fly must
match MATLAB bit for bit (after rounding) or the model is trained and scored on a slightly different task.

- ``imresize``: MATLAB's bicubic ``imresize`` (what BasicSR's ``matlab_functions.imresize`` reproduces).
- ``bi_degrade``: BI x4, ``imresize(GT, 1/4)`` rounded like ``imwrite``.
- ``bd_degrade``: BD x4, Gaussian blur ``fspecial('gaussian', 12, 1.6)`` with ``imfilter(.., 'replicate')``,
  then every 4th pixel starting at the 2nd (MATLAB ``2:4:end-2``).

Arrays are HxW, HxWxC or, where said, TxHxWxC; images are RGB uint8 or floats in [0, 1].
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

__all__ = [
    "imresize",
    "resize_weights",
    "to_uint8",
    "mod_crop",
    "bi_degrade",
    "bd_degrade",
    "fspecial_gaussian",
    "bd_kernel_size",
]


# --------------------------------------------------------------------------------------------- imresize
def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    inner = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    outer = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return inner + outer


def _mirror(idx: np.ndarray, length: int) -> np.ndarray:
    """Map any 0-based index into [0, length) by symmetric reflection that repeats the edge pixel.

    This is MATLAB's ``aux = [1:n, n:-1:1]; aux(mod(i - 1, 2n) + 1)``, so it stays right even when the
    kernel reaches further than the image is long (BasicSR's slicing would fail there).
    """
    period = 2 * length
    j = np.mod(idx, period)
    return np.where(j >= length, period - 1 - j, j)


@lru_cache(maxsize=64)
def resize_weights(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per output sample: the input indices (0-based, already mirrored) and float64 weights (rows sum to 1).

    Cached because a training loader resizes thousands of crops of the same few sizes.
    Returns ``(indices, weights)``, both shaped (out_length, taps) and read-only.
    """
    kernel_width = 4.0
    shrink = scale < 1 and antialiasing
    if shrink:
        kernel_width = kernel_width / scale  # widen the kernel: low-pass before decimation
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output pixel centre in 1-based input coordinates
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    dist = u[:, None] - idx
    weights = scale * _cubic(dist * scale) if shrink else _cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    indices = _mirror(idx.astype(np.int64) - 1, in_length)
    indices.setflags(write=False)
    weights.setflags(write=False)
    return indices, weights


@lru_cache(maxsize=64)
def _resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    """The banded (out_length x in_length) matrix of one axis, mirrored taps folded in; cached."""
    indices, weights = resize_weights(in_length, out_length, scale, antialiasing)
    mat = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.repeat(np.arange(out_length), indices.shape[1])
    np.add.at(mat, (rows, indices.ravel()), weights.ravel())  # add: mirrored taps may hit one pixel twice
    mat.setflags(write=False)
    return mat


@lru_cache(maxsize=64)
def _resize_matrix_tensor(in_length: int, out_length: int, scale: float, antialiasing: bool) -> torch.Tensor:
    return torch.tensor(_resize_matrix(in_length, out_length, scale, antialiasing))


def _resize_axis(img: np.ndarray, axis: int, out_length: int, scale: float, antialiasing: bool) -> np.ndarray:
    """Resize one axis as one matrix product: BLAS beats a per-tap gather loop at these sizes.

    The product runs in torch, which lets go of the GIL throughout; numpy's ``tensordot`` held it for up to
    90 ms on a clip, freezing the window while Compare made its bicubic view in a worker thread.
    """
    mat = _resize_matrix_tensor(img.shape[axis], out_length, float(scale), antialiasing)
    src = torch.from_numpy(np.ascontiguousarray(img))
    return torch.tensordot(mat, src, dims=([1], [axis])).movedim(0, axis).numpy()


def imresize(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """MATLAB ``imresize(img, scale, 'bicubic')``: float in, float out (not rounded, not clipped).

    Accepts HxW, HxWxC, or TxHxWxC (each frame resized). Output size is ``ceil(in * scale)`` per axis.
    Computed in float64; float32 input gives float32 output, anything else float64 (integers are taken
    as they are, not rescaled).
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3, 4):
        raise ValueError(f"imresize expects HxW, HxWxC or TxHxWxC, got shape {arr.shape}")
    if not scale > 0:
        raise ValueError(f"imresize scale must be positive, got {scale}")
    out_dtype = np.float32 if arr.dtype == np.float32 else np.float64
    work = arr.astype(np.float64, copy=False)
    h_axis = 1 if arr.ndim == 4 else 0
    # MATLAB resizes along the dimension with the smaller scale first; with one scale that is H, then W.
    for axis in (h_axis, h_axis + 1):
        out_length = int(math.ceil(work.shape[axis] * scale))
        work = _resize_axis(work, axis, out_length, scale, antialiasing)
    return np.ascontiguousarray(work, dtype=out_dtype)


# --------------------------------------------------------------------------------------------- rounding, crop
def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 as MATLAB ``imwrite``/``im2uint8``: clip, x255, round half away from zero."""
    x = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0) * 255.0
    return np.floor(x + 0.5).astype(np.uint8)  # values are >= 0, so floor(x + 0.5) rounds half away from zero


def mod_crop(img: np.ndarray, scale: int = 4) -> np.ndarray:
    """Crop H and W down to multiples of ``scale`` (bottom/right), so LR x scale == GT exactly.

    HxW, HxWxC and TxHxWxC arrays are accepted (a 3-D array is read as HxWxC).
    """
    arr = np.asarray(img)
    if arr.ndim not in (2, 3, 4):
        raise ValueError(f"mod_crop expects HxW, HxWxC or TxHxWxC, got shape {arr.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"mod_crop scale must be a positive integer, got {scale}")
    scale = int(scale)
    h_axis = 1 if arr.ndim == 4 else 0
    h, w = arr.shape[h_axis], arr.shape[h_axis + 1]
    h2, w2 = h - h % scale, w - w % scale
    if h2 == 0 or w2 == 0:
        raise ValueError(f"image of {h}x{w} (HxW) is smaller than the scale {scale}")
    return arr[:, :h2, :w2] if arr.ndim == 4 else arr[:h2, :w2]


def _check_uint8_rgb(gt: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(gt)
    if arr.dtype != np.uint8:
        raise ValueError(f"{what} expects uint8 frames, got {arr.dtype}")
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(f"{what} expects HxWx3 or TxHxWx3 frames, got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------------- BI
def bi_degrade(gt_uint8_rgb: np.ndarray, scale: int = 4) -> np.ndarray:
    """BI degradation: mod-crop, MATLAB bicubic down by ``1/scale``, round like ``imwrite``. HxWx3 or TxHxWx3."""
    gt = mod_crop(_check_uint8_rgb(gt_uint8_rgb, "bi_degrade"), scale)
    return to_uint8(imresize(gt.astype(np.float64) / 255.0, 1.0 / scale))


# --------------------------------------------------------------------------------------------- BD
def bd_kernel_size(sigma: float) -> int:
    """The kernel size the standard BD MATLAB script uses: ``ceil(3 sigma) * 2 + 2`` (12 for sigma 1.6)."""
    return int(math.ceil(sigma * 3) * 2 + 2)


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: float64 size x size, sums to 1.

    For an even size the grid is half-integer (-5.5 .. 5.5 for 12), so there is no centre tap.
    """
    half = (size - 1) / 2.0
    ax = np.arange(size, dtype=np.float64) - half
    h = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2.0 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def _correlate_replicate_decimate(img: np.ndarray, k1d: np.ndarray, axis: int, start: int, step: int) -> np.ndarray:
    """MATLAB ``imfilter(img, k, 'replicate')`` along one axis, evaluated only at ``start::step``.

    imfilter correlates, with the kernel's origin at 1-based ``floor((n + 1) / 2)`` (6 of 12), so output
    pixel i (0-based) is ``sum_k k[k] * img[i + k - (origin - 1)]``: it reads ``origin - 1`` = 5 pixels
    before and ``n - origin`` = 6 after. We pad by replicating the edge that much and sum shifted slices.
    (cv2.filter2D's default anchor would sit at 0-based 6, i.e. one pixel off, for an even kernel.)
    """
    n = k1d.size
    origin = (n + 1) // 2  # 1-based
    before, after = origin - 1, n - origin
    length = img.shape[axis]
    pad = [(0, 0)] * img.ndim
    pad[axis] = (before, after)
    padded = np.pad(img, pad, mode="edge")
    count = len(range(start, length, step))
    out = None
    for k in range(n):
        # padded index of the tap is i + k for output i
        sl = [slice(None)] * img.ndim
        sl[axis] = slice(start + k, start + k + step * (count - 1) + 1, step)
        term = padded[tuple(sl)] * k1d[k]
        out = term if out is None else out + term
    return out


def bd_degrade(gt_uint8_rgb: np.ndarray, scale: int = 4, sigma: float = 1.6) -> np.ndarray:
    """BD degradation: Gaussian blur (``fspecial``, ``imfilter`` replicate) then MATLAB ``s/2:s:end-s/2``.

    The 2-D Gaussian is separable (it is the outer product of its normalised marginal), so the blur runs as
    two 1-D passes, each evaluated only at the kept rows/columns. HxWx3 or TxHxWx3 uint8 in, uint8 out.
    """
    gt = mod_crop(_check_uint8_rgb(gt_uint8_rgb, "bd_degrade"), scale)
    k2d = fspecial_gaussian(bd_kernel_size(sigma), sigma)
    k1d = k2d.sum(axis=1)  # marginal of a separable kernel: outer(k1d, k1d) == k2d
    start = scale // 2 - 1  # MATLAB 1-based scale/2 (2 for x4) -> 0-based 1
    h_axis = 1 if gt.ndim == 4 else 0
    x = gt.astype(np.float64) / 255.0
    x = _correlate_replicate_decimate(x, k1d, h_axis, start, scale)
    x = _correlate_replicate_decimate(x, k1d, h_axis + 1, start, scale)
    return to_uint8(x)

"""MATLAB-compatible degradations against BasicSR's imresize, the shipped Vid4 BIx4 frames and hand checks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.data.degrade import (
    bd_degrade,
    bd_kernel_size,
    bi_degrade,
    fspecial_gaussian,
    imresize,
    mod_crop,
    to_uint8,
)


def _read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------- imresize
def test_imresize_down4_matches_basicsr(golden):
    out = imresize(golden["imresize_in"], 0.25)
    assert out.shape == golden["imresize_down4"].shape and out.dtype == np.float32
    assert np.abs(out - golden["imresize_down4"]).max() <= 1e-5


def test_imresize_up4_matches_basicsr(golden):
    out = imresize(golden["imresize_up_in"], 4)
    assert out.shape == golden["imresize_up4"].shape
    assert np.abs(out - golden["imresize_up4"]).max() <= 1e-5


def test_imresize_shapes_dtypes_and_constant():
    rng = np.random.default_rng(0)
    grey = rng.random((37, 50))
    assert imresize(grey, 0.25).shape == (10, 13)  # ceil
    assert imresize(grey, 0.25).dtype == np.float64
    clip = rng.random((3, 16, 20, 3)).astype(np.float32)
    both = imresize(clip, 0.5)
    assert both.shape == (3, 8, 10, 3)
    np.testing.assert_array_equal(both[1], imresize(clip[1], 0.5))
    # weights sum to one: a constant image stays constant, up and down
    const = np.full((20, 24, 3), 0.3)
    np.testing.assert_allclose(imresize(const, 0.25), 0.3, atol=1e-12)
    np.testing.assert_allclose(imresize(const, 3), 0.3, atol=1e-12)


def test_imresize_tiny_image_uses_symmetric_wrap():
    """A kernel wider than the image must still mirror (MATLAB), not fail."""
    out = imresize(np.arange(6, dtype=np.float64).reshape(2, 3), 0.25)
    assert out.shape == (1, 1) and np.isfinite(out).all()


# ---------------------------------------------------------------------------------------------- rounding, crop
def test_to_uint8_rounds_half_up_and_clips():
    x = np.array([-0.2, 0.0, 0.5 / 255, 1.49 / 255, 2.5 / 255, 254.5 / 255, 1.0, 1.3])
    assert to_uint8(x).tolist() == [0, 0, 1, 1, 3, 255, 255, 255]


def test_mod_crop():
    img = np.zeros((35, 42, 3), np.uint8)
    assert mod_crop(img, 4).shape == (32, 40, 3)
    assert mod_crop(img[..., 0], 4).shape == (32, 40)
    assert mod_crop(np.zeros((2, 35, 42, 3)), 4).shape == (2, 32, 40, 3)
    src = np.arange(35 * 42).reshape(35, 42)
    np.testing.assert_array_equal(mod_crop(src, 4), src[:32, :40])  # keeps top-left
    with pytest.raises(ValueError, match="smaller than the scale"):
        mod_crop(np.zeros((3, 8)), 4)


# ---------------------------------------------------------------------------------------------- BI
def test_bi_degrade_matches_shipped_vid4_bix4(calendar_dir):
    gt = _read_rgb(calendar_dir / "GT" / "0000.png")
    lr = _read_rgb(calendar_dir / "BIx4" / "0000.png")
    out = bi_degrade(gt)
    assert out.dtype == np.uint8 and out.shape == lr.shape == (144, 180, 3)
    # measured: identical (max |diff| 0 on all 41 frames)
    assert np.abs(out.astype(int) - lr.astype(int)).max() == 0


def test_bi_degrade_clip_and_validation():
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 256, (2, 34, 41, 3), dtype=np.uint8)
    out = bi_degrade(clip)
    assert out.shape == (2, 8, 10, 3)
    np.testing.assert_array_equal(out[1], bi_degrade(clip[1]))
    with pytest.raises(ValueError, match="uint8"):
        bi_degrade(clip.astype(np.float32))


# ---------------------------------------------------------------------------------------------- BD
def test_fspecial_matches_independent_formula():
    assert bd_kernel_size(1.6) == 12
    k = fspecial_gaussian(12, 1.6)
    x, y = np.meshgrid(np.linspace(-5.5, 5.5, 12), np.linspace(-5.5, 5.5, 12))
    ref = np.exp(-(x**2 + y**2) / (2 * 1.6**2))
    ref /= ref.sum()
    np.testing.assert_allclose(k, ref, rtol=0, atol=1e-15)
    assert abs(k.sum() - 1) < 1e-12 and np.allclose(k, k[::-1, ::-1])


def _bd_reference(gt: np.ndarray) -> np.ndarray:
    """Brute-force 2-D imfilter (corr, replicate, origin at 1-based 6 => pad 5 before, 6 after) + 2:4:end-2."""
    k = fspecial_gaussian(12, 1.6)
    x = gt.astype(np.float64) / 255
    pad = np.pad(x, ((5, 6), (5, 6), (0, 0)), mode="edge")
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for dy in range(12):
        for dx in range(12):
            out += k[dy, dx] * pad[dy : dy + h, dx : dx + w]
    return to_uint8(out[1::4, 1::4])


def test_bd_degrade_matches_brute_force_imfilter():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    out = bd_degrade(gt)
    assert out.shape == (7, 10, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, _bd_reference(mod_crop(gt, 4)))


def test_bd_degrade_origin_is_matlab_even_kernel_origin():
    """A vertical step edge: imfilter's origin for a 12-tap kernel is 1-based 6 (reads 5 before, 6 after).

    GT column 29 (the 8th sampled column, LR column 7) sees the columns >= 31 through taps k >= 7; an
    implementation that centres the kernel at 0-based 6 (cv2's default anchor) would use taps k >= 8.
    """
    gt = np.zeros((48, 64, 3), np.uint8)
    gt[:, 31:] = 255
    k1d = fspecial_gaussian(12, 1.6).sum(axis=1)
    expected, wrong = to_uint8(k1d[7:].sum()), to_uint8(k1d[8:].sum())
    assert expected != wrong
    out = bd_degrade(gt)
    assert (out[:, 7] == expected).all()
    assert (out[:, 6] == 0).all() and (out[:, 9] == 255).all()


def test_bd_degrade_constant_and_clip():
    const = np.full((2, 48, 64, 3), 77, np.uint8)
    out = bd_degrade(const)
    assert out.shape == (2, 12, 16, 3)
    assert (out == 77).all()

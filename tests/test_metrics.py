"""PSNR/SSIM against BasicSR's own numbers, plus edge cases."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.conftest import shared_path
from core.errors import UserError
from core.metrics import ClipScore, MetricShapeError, clip_metrics, mean_over_clips, psnr, ssim, y_channel


@pytest.fixture(scope="module")
def basicsr_numbers() -> dict:
    return json.loads(shared_path("fixtures", "basicsr_metrics.json").read_text())


@pytest.mark.parametrize("y", [0, 1])
@pytest.mark.parametrize("crop", [0, 4])
def test_matches_basicsr(golden, basicsr_numbers, y, crop):
    sr, gt = golden["metric_sr_bgr"], golden["metric_gt_bgr"]
    p = psnr(sr, gt, crop_border=crop, test_y_channel=bool(y), channel_order="bgr")
    s = ssim(sr, gt, crop_border=crop, test_y_channel=bool(y), channel_order="bgr")
    assert abs(p - basicsr_numbers[f"psnr_y{y}_crop{crop}"]) <= 1e-6
    assert abs(s - basicsr_numbers[f"ssim_y{y}_crop{crop}"]) <= 1e-6
    # the same pixels in RGB order and CHW layout give the same scores
    rgb_sr, rgb_gt = sr[..., ::-1], gt[..., ::-1]
    assert psnr(rgb_sr, rgb_gt, crop, bool(y)) == pytest.approx(p, abs=1e-12)
    chw = psnr(rgb_sr.transpose(2, 0, 1), rgb_gt.transpose(2, 0, 1), crop, bool(y), input_order="CHW")
    assert chw == pytest.approx(p, abs=1e-12)


def test_y_channel_bt601():
    px = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0], [255, 255, 255]]], np.uint8)
    y = y_channel(px)[0, :, 0]
    np.testing.assert_allclose(y, [16 + 65.481, 16 + 128.553, 16 + 24.966, 16, 235], atol=1e-4)
    np.testing.assert_array_equal(y_channel(px[..., ::-1], "bgr"), y_channel(px))


def test_identical_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert psnr(img, img) == math.inf
    assert psnr(img, img, crop_border=4, test_y_channel=True) == math.inf
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, test_y_channel=True) == pytest.approx(1.0, abs=1e-12)


def test_known_psnr_value():
    a = np.zeros((16, 16), np.uint8)
    b = np.full((16, 16), 10, np.uint8)  # MSE 100
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    assert psnr(a.astype(np.float64), b.astype(np.float64)) == psnr(a, b)


def test_shape_mismatch_is_clear():
    a = np.zeros((32, 32, 3), np.uint8)
    b = np.zeros((32, 36, 3), np.uint8)
    with pytest.raises(ValueError, match=r"image shapes differ: \(32, 32, 3\) vs reference \(32, 36, 3\)"):
        psnr(a, b)
    with pytest.raises(UserError, match="image shapes differ"):
        ssim(a, b)
    with pytest.raises(ValueError, match="input_order"):
        psnr(a, a, input_order="WHC")


def test_clip_metrics_and_means():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    sr = np.clip(gt.astype(int) + rng.integers(-5, 6, gt.shape), 0, 255).astype(np.uint8)
    score = clip_metrics(sr, gt, crop_border=2, y=True, name="a")
    assert isinstance(score, ClipScore) and score.name == "a"
    assert len(score.psnr) == len(score.ssim) == 3
    assert score.psnr[1] == psnr(sr[1], gt[1], 2, True)
    assert score.mean_psnr == pytest.approx(np.mean(score.psnr))
    other = ClipScore("b", psnr=[10.0], ssim=[0.5])
    total = mean_over_clips([score, other])
    assert total.clips == 2
    assert total.psnr == pytest.approx((score.mean_psnr + 10.0) / 2)  # clips weigh equally, not frames
    assert total.ssim == pytest.approx((score.mean_ssim + 0.5) / 2)
    with pytest.raises(MetricShapeError, match="clip a: 2 SR frames but 3 reference frames"):
        clip_metrics(sr[:2], gt, name="a")
    with pytest.raises(ValueError, match="at least one"):
        mean_over_clips([])

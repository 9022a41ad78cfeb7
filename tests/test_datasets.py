"""Datasets: discovery per layout, aligned patches, on-the-fly LR = crop of the full degraded frame, errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.data.datasets import FrameReader, discover
from core.data.patches import IterationSampler, PatchSettings, TrainPatches, load_val_clip
from core.data.degrade import bd_degrade, bi_degrade
from core.errors import DatasetError
from core.io.frames import write_frames


def _clip(root: Path, name: str, frames: int = 4, h: int = 64, w: int = 96, seed: int = 0,
          lr_root: Path | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 256, (frames, h, w, 3), dtype=np.uint8)
    write_frames(gt, root / name)
    if lr_root is not None:
        write_frames(bi_degrade(gt), lr_root / name)
    return gt


def test_folder_dataset_patches_are_aligned(tmp_path):
    gt = _clip(tmp_path / "gt", "a", lr_root=tmp_path / "lr")
    recs = discover("folder", tmp_path / "gt", tmp_path / "lr", "disk", "train")
    assert [r.name for r in recs] == ["a"] and recs[0].frames == 4 and recs[0].gt_size == (64, 96)
    ds = TrainPatches(recs, FrameReader(), PatchSettings(3, 8, "disk", flip=False, rotate=False))
    lr, hr = ds[3]
    assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32)
    # find where the GT patch came from; the LR patch must be the same place at 1/4
    full_lr = bi_degrade(gt)
    hits = [(t, y, x) for t in range(2) for y in range(0, 33, 4) for x in range(0, 65, 4)
            if np.array_equal(gt[t:t + 3, y:y + 32, x:x + 32].transpose(0, 3, 1, 2), hr.numpy())]
    assert len(hits) == 1
    t, y, x = hits[0]
    assert np.array_equal(full_lr[t:t + 3, y // 4:y // 4 + 8, x // 4:x // 4 + 8].transpose(0, 3, 1, 2), lr.numpy())


def test_samples_are_a_function_of_the_index(tmp_path):
    _clip(tmp_path / "gt", "a", lr_root=tmp_path / "lr")
    recs = discover("folder", tmp_path / "gt", tmp_path / "lr", "disk", "train")
    ds = TrainPatches(recs, FrameReader(), PatchSettings(2, 8, "disk", reverse=True), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(ds[7], ds[7]))
    assert not np.array_equal(ds[7][1], ds[8][1])


@pytest.mark.parametrize("mode, degrade", [("BI", bi_degrade), ("BD", bd_degrade)])
def test_on_the_fly_lr_equals_crop_of_whole_frame(tmp_path, mode, degrade):
    gt = _clip(tmp_path / "gt", "a", h=96, w=128)
    recs = discover("folder", tmp_path / "gt", None, mode, "train")
    ds = TrainPatches(recs, FrameReader(), PatchSettings(2, 8, mode))
    full = degrade(gt)
    for y, x in [(0, 0), (5, 9), (16, 24), (13, 0)]:       # corners, interior, borders
        lr, hr = ds._patch(recs[0], 1, y, x, 24, 32)
        assert np.array_equal(lr, full[1:3, y:y + 8, x:x + 8]), (y, x)
        assert np.array_equal(hr, gt[1:3, 4 * y:4 * y + 32, 4 * x:4 * x + 32])


def test_reds_layout_holds_out_reds4(tmp_path):
    for name in ["000", "001", "011", "015", "020"]:
        _clip(tmp_path / "train_sharp", name, frames=2, h=32, w=32,
              lr_root=tmp_path / "train_sharp_bicubic" / "X4")
    train = discover("reds", tmp_path, None, "disk", "train")
    val = discover("reds", tmp_path, None, "disk", "val")
    assert [r.name for r in train] == ["001"]
    assert [r.name for r in val] == ["000", "011", "015", "020"]


def test_vimeo_layout_reads_the_lists(tmp_path):
    for name in ["00001/0001", "00001/0002"]:
        _clip(tmp_path / "sequences", name, frames=7, h=32, w=32, lr_root=tmp_path / "lr")
    (tmp_path / "sep_trainlist.txt").write_text("00001/0001\n")
    (tmp_path / "sep_testlist.txt").write_text("00001/0002\n")
    assert [r.name for r in discover("vimeo", tmp_path, tmp_path / "lr", "disk", "train")] == ["00001/0001"]
    assert [r.name for r in discover("vimeo", tmp_path, tmp_path / "lr", "disk", "val")] == ["00001/0002"]


def test_validation_clip_is_centre_cropped(tmp_path):
    gt = _clip(tmp_path / "gt", "a", h=64, w=96, lr_root=tmp_path / "lr")
    rec = discover("folder", tmp_path / "gt", tmp_path / "lr", "disk", "val")[0]
    clip = load_val_clip(rec, FrameReader(), "disk", max_frames=2, crop=8)
    assert clip.lr.shape == (2, 8, 8, 3) and clip.gt.shape == (2, 32, 32, 3)
    assert np.array_equal(clip.gt, gt[:2, 16:48, 32:64])


def test_sampler_shards_and_resumes():
    full = list(IterationSampler(0, 4, 2, rank=0, world=2)) + list(IterationSampler(0, 4, 2, rank=1, world=2))
    assert sorted(i for b in full for i in b) == list(range(16))
    assert list(IterationSampler(2, 4, 2, 1, 2)) == list(IterationSampler(0, 4, 2, 1, 2))[2:]


# -- bad input: each a clear DatasetError before training -------------------------------------------
def test_no_clips(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no clips"):
        discover("folder", tmp_path / "empty", None, "BI", "train")


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        discover("folder", tmp_path / "nope", None, "BI", "train")


def test_clips_shorter_than_clip_length(tmp_path):
    _clip(tmp_path / "gt", "short", frames=3)
    recs = discover("folder", tmp_path / "gt", None, "BI", "train")
    with pytest.raises(DatasetError, match=r"clip short has 3 frames, fewer than data\.clip_length = 5"):
        TrainPatches(recs, FrameReader(), PatchSettings(5, 8, "BI"))


def test_lr_gt_size_mismatch(tmp_path):
    _clip(tmp_path / "gt", "a")
    write_frames(np.zeros((4, 10, 10, 3), np.uint8), tmp_path / "lr" / "a")
    with pytest.raises(DatasetError, match="LR frames are 10x10 but GT frames are 64x96"):
        discover("folder", tmp_path / "gt", tmp_path / "lr", "disk", "train")


def test_lr_gt_frame_count_mismatch(tmp_path):
    gt = _clip(tmp_path / "gt", "a")
    write_frames(bi_degrade(gt[:3]), tmp_path / "lr" / "a")
    with pytest.raises(DatasetError, match="3 LR frames but 4 GT frames"):
        discover("folder", tmp_path / "gt", tmp_path / "lr", "disk", "train")


def test_patch_larger_than_frames(tmp_path):
    _clip(tmp_path / "gt", "a", h=32, w=32)
    recs = discover("folder", tmp_path / "gt", None, "BI", "train")
    with pytest.raises(DatasetError, match="smaller than an LR patch"):
        TrainPatches(recs, FrameReader(), PatchSettings(2, 16, "BI"))

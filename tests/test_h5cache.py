"""HDF5 frame cache: same pixels as the PNGs, one chunk per frame, stale caches detected, atomic build."""
from __future__ import annotations

import h5py
import numpy as np

from core.data.datasets import FrameReader, cache_fingerprint, cache_items, discover
from core.data.patches import PatchSettings, TrainPatches
from core.data.degrade import bi_degrade
from core.io.frames import write_frames
from core.io.h5cache import H5Frames, build_cache, cache_is_current


def _dataset(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        gt = rng.integers(0, 256, (3, 32, 48, 3), dtype=np.uint8)
        write_frames(gt, tmp_path / "gt" / name)
        write_frames(bi_degrade(gt), tmp_path / "lr" / name)
    return discover("folder", tmp_path / "gt", tmp_path / "lr", "disk", "train")


def test_cache_round_trip_and_layout(tmp_path):
    recs = _dataset(tmp_path)
    path = tmp_path / "cache.h5"
    fp = cache_fingerprint(recs)
    seen = []
    build_cache(path, cache_items(recs), fp, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (12, 12)
    assert cache_is_current(path, fp)
    with h5py.File(path) as f:
        assert f["gt/a"].chunks == (1, 32, 48, 3) and f["gt/a"].dtype == np.uint8
        assert f["lr/b"].shape == (3, 8, 12, 3)
    png, h5 = FrameReader(), FrameReader(H5Frames(path))
    for rec in recs:
        for which in ("gt", "lr"):
            assert np.array_equal(png.read(rec, which, 0, 3), h5.read(rec, which, 0, 3))
        assert np.array_equal(png.read(rec, "gt", 1, 3, (4, 8, 16, 20)), h5.read(rec, "gt", 1, 3, (4, 8, 16, 20)))


def test_patches_identical_from_cache(tmp_path):
    recs = _dataset(tmp_path)
    path = build_cache(tmp_path / "c.h5", cache_items(recs), cache_fingerprint(recs))
    s = PatchSettings(2, 4, "disk")
    a = TrainPatches(recs, FrameReader(), s)
    b = TrainPatches(recs, FrameReader(H5Frames(path)), s)
    for i in range(5):
        assert all(np.array_equal(x, y) for x, y in zip(a[i], b[i]))


def test_stale_or_partial_cache_is_not_current(tmp_path):
    recs = _dataset(tmp_path)
    path = build_cache(tmp_path / "c.h5", cache_items(recs), cache_fingerprint(recs))
    assert not cache_is_current(path, cache_fingerprint(recs[:1]))
    assert not cache_is_current(tmp_path / "missing.h5", "x")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    assert not cache_is_current(tmp_path / "junk.h5", "x")


def test_failed_build_leaves_nothing(tmp_path):
    _dataset(tmp_path)

    def boom():
        yield np.zeros((32, 48, 3), np.uint8)
        raise RuntimeError("disk full")

    items = [("gt/a", 3, (32, 48, 3), boom)]
    try:
        build_cache(tmp_path / "c.h5", items, "fp")
    except RuntimeError:
        pass
    assert list(tmp_path.glob("*.h5")) == [] and not list(tmp_path.glob(".c.h5*"))

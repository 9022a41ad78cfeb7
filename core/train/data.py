"""Turn the config's data sections into the training patch set and the validation set, checking both first."""
from __future__ import annotations

from pathlib import Path

from ..data.datasets import ClipRecord, FrameReader, cache_fingerprint, cache_items, check_clip_length, discover
from ..data.lr_clips import load_lr_clips
from ..data.patches import LRPatches, PatchSettings, TrainPatches
from ..errors import DatasetError
from ..events import EventSink, Progress
from ..io.h5cache import H5Frames, build_cache, cache_is_current
from .config import TrainConfig
from .distributed import DistInfo, barrier
from .validate import ValSet


def train_records(cfg: TrainConfig) -> list[ClipRecord]:
    """The training clips (validation clips of the same dataset held out), checked for length and size."""
    d = cfg.data
    held = cfg.val.clips if cfg.val.root is None else None
    records = discover(d.kind, d.root, d.lr_root, d.lr, "train", held)
    check_clip_length(records, d.clip_length, d.patch_size)
    return records


def val_records(cfg: TrainConfig) -> tuple[list[ClipRecord], str]:
    """The validation clips and how their LR frames are obtained (empty when there is no validation split)."""
    d, v = cfg.data, cfg.val
    if v.root is not None:
        if d.lr == "disk" and not v.lr_root:
            raise DatasetError("val.lr_root is needed when data.lr = disk (or set data.lr to BI or BD)")
        lr_mode = "disk" if v.lr_root else d.lr
        records = discover("folder", v.root, v.lr_root, lr_mode, "val", v.clips)
    elif d.kind in ("folder", "lr-only") and not v.clips:     # no split inside the folder; lr-only has no GT
        return [], d.lr
    else:
        lr_mode = d.lr
        records = discover(d.kind, d.root, d.lr_root, d.lr, "val", v.clips)
    return (records[:v.max_clips] if v.max_clips else records), lr_mode


def build_data(cfg: TrainConfig, dist: DistInfo,
               sink: EventSink) -> tuple[TrainPatches | LRPatches, ValSet | None]:
    """Discover, check and (optionally) cache the clips; every bad input fails here, before any training."""
    if cfg.data.kind == "lr-only":
        return lr_only_data(cfg)
    records = train_records(cfg)
    vrecs, vmode = val_records(cfg)
    reader = FrameReader()
    if cfg.data.cache:
        path = Path(cfg.data.cache)
        fingerprint = cache_fingerprint(records)
        if dist.is_main and not cache_is_current(path, fingerprint):
            def progress(done: int, total: int) -> None:
                if done % 50 == 0 or done == total:
                    sink(Progress("cache", done, total))
            build_cache(path, cache_items(records), fingerprint, progress)
        barrier(dist)
        reader = FrameReader(H5Frames(path))
    d = cfg.data
    settings = PatchSettings(d.clip_length, d.patch_size, d.lr, d.flip, d.rotate, d.reverse)
    patches = TrainPatches(records, reader, settings, cfg.runtime.seed)
    if not vrecs:
        return patches, None
    y = cfg.val.y_channel if cfg.val.y_channel is not None else d.kind != "reds"
    return patches, ValSet(vrecs, FrameReader(), vmode, cfg.val.max_frames, cfg.val.crop, y)


def lr_only_data(cfg: TrainConfig) -> tuple[LRPatches, ValSet | None]:
    """``data.kind = lr-only``: LR patches with no GT (``has_gt`` False) from ``data.lr_root``; videos are decoded
    once into memory in every process, at most ``data.lr_cache_mb`` MiB. Validation only with a ``val.root``."""
    d = cfg.data
    settings = PatchSettings(d.clip_length, d.patch_size, "disk", d.flip, d.rotate, d.reverse)
    patches = LRPatches(load_lr_clips(d.lr_root, d.lr_cache_mb), settings, cfg.runtime.seed)
    vrecs, vmode = val_records(cfg)
    if not vrecs:
        return patches, None
    y = cfg.val.y_channel if cfg.val.y_channel is not None else True
    return patches, ValSet(vrecs, FrameReader(), vmode, cfg.val.max_frames, cfg.val.crop, y)

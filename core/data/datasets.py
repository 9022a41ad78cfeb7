"""Training and validation clips with GT: REDS, Vimeo-90K septuplets, any folder of clips or videos.

Discovery checks everything it cheaply can before training starts (clip count, clip length, LR/GT sizes) and
raises ``DatasetError`` with the offending clip named. ``FrameReader`` reads windows of the clips found, from their
files or videos or from the HDF5 cache built from them; what a stage draws from them is ``patches``.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ClipError, DatasetError
from ..io.frames import VIDEO_EXTS, find_clips, list_frames, natural_key, probe_folder, read_clip
from ..io.h5cache import CacheItem, H5Frames
from ..io.image_file import IMAGE_EXTS, read_frame
from ..io.missing import what_is, why_missing

SCALE = 4
REDS4 = ("000", "011", "015", "020")


@dataclass(frozen=True)
class ClipRecord:
    """One clip: GT frames (files, or a video), LR frames when on disk, and sizes checked at discovery."""

    name: str
    gt: tuple[Path, ...] | Path              # frame files, or one video file
    lr: tuple[Path, ...] | Path | None
    frames: int
    gt_size: tuple[int, int]                 # (H, W) of the GT frames as stored


# -- discovery ---------------------------------------------------------------------------------------
def discover(kind: str, root: str | os.PathLike | None, lr_root: str | os.PathLike | None, lr_mode: str,
             split: str, clips: Sequence[str] | None = None) -> list[ClipRecord]:
    """The clips of ``split`` ('train' or 'val') of a dataset; ``clips`` names the validation clips.

    REDS: ``root/train_sharp/NNN`` and ``root/train_sharp_bicubic/X4/NNN``; the validation clips (REDS4 by
    default) are held out of training. Vimeo-90K: ``root/sequences`` with ``sep_trainlist.txt`` /
    ``sep_testlist.txt``, LR under ``lr_root``. Folder: every clip folder or video under ``root``, LR clips at
    the same relative place under ``lr_root``; the named validation clips are held out of training (with no
    names, the whole folder is the requested split).
    """
    if not root:
        raise DatasetError("no dataset given: set data.root (the folder that holds the training clips)")
    root = Path(root)
    missing = why_missing(root, "folder")
    if missing is not None:
        raise DatasetError(f"dataset folder not found: {root} ({missing})")
    if not root.is_dir() and not (kind == "folder" and root.is_file()):      # a folder kind's root may be a video
        raise DatasetError(f"dataset {root} is {what_is(root)}, not a folder of frames")
    if kind == "reds":
        pairs = _reds_pairs(root, lr_root, lr_mode)
        held = set(clips if clips is not None else REDS4)
    elif kind == "vimeo":
        return _checked(_vimeo_pairs(root, lr_root, lr_mode, split, clips), lr_mode, root)
    elif kind == "folder":
        pairs = _folder_pairs(root, lr_root, lr_mode)
        if clips is None:  # no split inside this folder: all of it is the requested set
            return _checked(pairs, lr_mode, root)
        held = set(clips)
    else:
        raise DatasetError(f"unknown dataset kind {kind!r} (use reds, vimeo or folder)")
    missing = sorted(held - {name for name, _, _ in pairs})
    if missing and (split == "val" or clips is not None):
        raise DatasetError(f"validation clip {missing[0]!r} is not in {root}")
    chosen = [p for p in pairs if (p[0] in held) == (split == "val")]
    return _checked(chosen, lr_mode, root)


def _reds_pairs(root: Path, lr_root, lr_mode: str) -> list[tuple[str, Path, Path | None]]:
    gt_root = root / "train_sharp" if (root / "train_sharp").is_dir() else root
    lr_base = Path(lr_root) if lr_root else root / "train_sharp_bicubic" / "X4"
    if lr_mode == "disk" and not lr_base.is_dir():
        raise DatasetError(f"REDS LR frames not found at {lr_base} (set data.lr_root, or data.lr to BI to make "
                           f"them on the fly)")
    dirs = sorted((d for d in gt_root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: natural_key(d.name))
    return [(d.name, d, lr_base / d.name if lr_mode == "disk" else None) for d in dirs]


def _vimeo_pairs(root: Path, lr_root, lr_mode: str, split: str, clips) -> list[tuple[str, Path, Path | None]]:
    seq = root / "sequences" if (root / "sequences").is_dir() else root
    if clips is None:
        listing = root / ("sep_trainlist.txt" if split == "train" else "sep_testlist.txt")
        if not listing.is_file():
            raise DatasetError(f"Vimeo-90K list not found: {listing}")
        clips = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if lr_mode == "disk" and not lr_root:
        raise DatasetError("Vimeo-90K LR frames: set data.lr_root (e.g. vimeo_septuplet_matlabLRx4/sequences) "
                           "or data.lr to BI or BD")
    return [(c, seq / c, Path(lr_root) / c if lr_mode == "disk" else None) for c in clips]


def _folder_pairs(root: Path, lr_root, lr_mode: str) -> list[tuple[str, Path, Path | None]]:
    try:
        found = find_clips(root)
    except ClipError as e:
        raise DatasetError(str(e)) from None
    out = []
    for clip in found:
        rel = clip.relative_to(root)
        name = rel.as_posix() if str(rel) != "." else clip.name
        out.append((name, clip, Path(lr_root) / rel if lr_mode == "disk" else None))
    return out


def _checked(pairs: list[tuple[str, Path, Path | None]], lr_mode: str, root: Path) -> list[ClipRecord]:
    if not pairs:
        raise DatasetError(f"no clips found in {root}")
    return [_record(name, gt, lr, lr_mode) for name, gt, lr in pairs]


def _frames_of(path: Path, what: str) -> tuple[tuple[Path, ...] | Path, int, tuple[int, int]]:
    """Frame files (or the video), frame count and (H, W) of one clip. Every frame's header is read (nothing is
    decoded): a frame past the size limits, or of another size than the first, is refused before training."""
    if path.is_file() and path.suffix.lower() in VIDEO_EXTS:
        clip = _video(path)
        return path, len(clip), clip.shape[1:3]
    if not path.is_dir():
        raise DatasetError(f"{what} clip not found: {path} ({why_missing(path, 'folder') or 'not a folder'})")
    try:
        files = tuple(list_frames(path))
        if not files:
            raise DatasetError(f"{what} clip {path} holds no frames ({', '.join(IMAGE_EXTS)})")
        return files, len(files), probe_folder(path, files)
    except ClipError as e:
        raise DatasetError(str(e)) from None


def _record(name: str, gt_path: Path, lr_path: Path | None, lr_mode: str) -> ClipRecord:
    gt, n, gt_size = _frames_of(gt_path, "GT")
    lr = None
    if lr_mode == "disk":
        lr, n_lr, lr_size = _frames_of(lr_path, "LR")
        if n_lr != n:
            raise DatasetError(f"clip {name}: {n_lr} LR frames but {n} GT frames")
        if (lr_size[0] * SCALE, lr_size[1] * SCALE) != (gt_size[0] - gt_size[0] % SCALE,
                                                          gt_size[1] - gt_size[1] % SCALE):
            raise DatasetError(f"clip {name}: LR frames are {lr_size[0]}x{lr_size[1]} but GT frames are "
                               f"{gt_size[0]}x{gt_size[1]} (HxW; expected GT = {SCALE}x LR)")
    return ClipRecord(name, gt, lr, n, gt_size)


_VIDEOS: dict[Path, np.ndarray] = {}


def _video(path: Path) -> np.ndarray:
    """Decoded frames of a video, kept per process (videos are decoded once, then sliced)."""
    if path not in _VIDEOS:
        try:
            _VIDEOS[path] = read_clip(path).frames
        except ClipError as e:
            raise DatasetError(str(e)) from None
    return _VIDEOS[path]


def check_clip_length(records: Sequence[ClipRecord], clip_length: int, patch: int) -> None:
    """Every training clip must hold ``clip_length`` frames and an LR patch of ``patch`` pixels."""
    short = [r for r in records if r.frames < clip_length]
    if short:
        r = short[0]
        raise DatasetError(f"clip {r.name} has {r.frames} frames, fewer than data.clip_length = {clip_length} "
                           f"({len(short)} of {len(records)} clips are too short)")
    small = [r for r in records if min(r.gt_size) // SCALE < patch]
    if small:
        r = small[0]
        raise DatasetError(f"clip {r.name}: frames of {r.gt_size[0]}x{r.gt_size[1]} (HxW) are smaller than an LR patch "
                           f"of {patch} (GT {patch * SCALE}); lower data.patch_size")


# -- reading frames ----------------------------------------------------------------------------------
class FrameReader:
    """Reads GT/LR frame windows of a clip from files, videos or an HDF5 cache (when given)."""

    def __init__(self, cache: H5Frames | None = None) -> None:
        self.cache = cache

    def read(self, rec: ClipRecord, which: str, t0: int, t1: int,
             box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Frames ``t0:t1`` of ``rec``'s ``which`` ('gt' or 'lr'), optionally the window (y, x, h, w)."""
        if self.cache is not None:
            return self.cache.read(cache_key(rec, which), t0, t1, box)
        src = rec.gt if which == "gt" else rec.lr
        if isinstance(src, Path):
            frames = _video(src)[t0:t1]
        else:
            frames = np.stack([read_frame_file(p) for p in src[t0:t1]])
        if box is not None:
            y, x, h, w = box
            frames = frames[:, y:y + h, x:x + w]
        return np.ascontiguousarray(frames)


def read_frame_file(path: Path) -> np.ndarray:
    """One frame as uint8 (H, W, 3) RGB, through the project's reader: its header is bounded by the frame-size
    limits (``core.io.limits``) before anything is decoded, as for every other frame the tool reads."""
    try:
        return read_frame(path)[0]
    except ClipError as e:
        raise DatasetError(str(e)) from None


def cache_key(rec: ClipRecord, which: str) -> str:
    return f"{which}/{rec.name}"


def cache_items(records: Sequence[ClipRecord]) -> list[CacheItem]:
    """What ``build_cache`` needs to store every clip's GT (and LR when on disk), frame by frame."""
    reader = FrameReader()
    items: list[CacheItem] = []
    for rec in records:
        for which in ("gt", "lr") if rec.lr is not None else ("gt",):
            first = reader.read(rec, which, 0, 1)[0]
            frames = (lambda r=rec, w=which: (reader.read(r, w, t, t + 1)[0] for t in range(r.frames)))
            items.append((cache_key(rec, which), rec.frames, tuple(first.shape), frames))
    return items


def cache_fingerprint(records: Sequence[ClipRecord]) -> str:
    """A digest of the clips and their sources: a cache built from anything else is stale."""
    desc = [[r.name, r.frames, str(r.gt if isinstance(r.gt, Path) else r.gt[0].parent),
             None if r.lr is None else str(r.lr if isinstance(r.lr, Path) else r.lr[0].parent)] for r in records]
    return hashlib.sha256(json.dumps(desc).encode()).hexdigest()

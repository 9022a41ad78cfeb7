"""Training and validation clips: REDS, Vimeo-90K septuplets, any folder of clips or videos, and LR clips
with no GT at all (a video or a folder of frames the user has: trained by distillation from a teacher).

Discovery checks everything it cheaply can before training starts (clip count, clip length, LR/GT sizes) and
raises ``DatasetError`` with the offending clip named. Patches are drawn by *index*: sample ``i`` always comes
from ``np.random.default_rng((seed, i))``, so the data stream is the same whatever the number of workers, and
resuming at iteration ``k`` only needs ``k`` — no sampler or worker state to save.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import ClipError, DatasetError
from ..io.frames import (IMAGE_EXTS, VIDEO_EXTS, find_clips, list_frames, natural_key, probe_folder, read_clip,
                         read_frame)
from ..io.h5cache import CacheItem, H5Frames
from ..io.source import FolderSource, open_source
from .degrade import bd_degrade, bi_degrade

SCALE = 4
REDS4 = ("000", "011", "015", "020")
# LR pixels read around a patch when LR is made on the fly: more than the bicubic (±2) and BD (±2) supports,
# so the patch equals the same crop of the whole degraded frame.
DEGRADE_MARGIN = 4
DEGRADERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"BI": bi_degrade, "BD": bd_degrade}


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
    if not root.exists():
        raise DatasetError(f"dataset folder not found: {root}")
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
        raise DatasetError(f"{what} clip not found: {path}")
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
            frames = np.stack([_read_png(p) for p in src[t0:t1]])
        if box is not None:
            y, x, h, w = box
            frames = frames[:, y:y + h, x:x + w]
        return np.ascontiguousarray(frames)


def _read_png(path: Path) -> np.ndarray:
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


# -- training patches --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatchSettings:
    clip_length: int = 15
    patch_size: int = 64                     # LR pixels
    lr_mode: str = "disk"                    # disk | BI | BD
    flip: bool = True
    rotate: bool = True
    reverse: bool = False


class TrainPatches(Dataset):
    """Sample ``i``: a random clip, start frame and aligned LR/GT patch, augmented — uint8 (T, 3, h, w) pairs."""

    has_gt = True

    def __init__(self, records: Sequence[ClipRecord], reader: FrameReader, settings: PatchSettings,
                 seed: int = 0) -> None:
        check_clip_length(records, settings.clip_length, settings.patch_size)
        self.records = list(records)
        self.reader = reader
        self.s = settings
        self.seed = seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        rec = self.records[int(rng.integers(len(self.records)))]
        s = self.s
        t0 = int(rng.integers(rec.frames - s.clip_length + 1))
        lh, lw = rec.gt_size[0] // SCALE, rec.gt_size[1] // SCALE
        y, x = int(rng.integers(lh - s.patch_size + 1)), int(rng.integers(lw - s.patch_size + 1))
        lr, gt = self._patch(rec, t0, y, x, lh, lw)
        lr, gt = augment(lr, gt, rng, s.flip, s.rotate, s.reverse)
        return _to_tensor(lr), _to_tensor(gt)

    def _patch(self, rec: ClipRecord, t0: int, y: int, x: int, lh: int, lw: int) -> tuple[np.ndarray, np.ndarray]:
        p, t1 = self.s.patch_size, t0 + self.s.clip_length
        if self.s.lr_mode == "disk":
            lr = self.reader.read(rec, "lr", t0, t1, (y, x, p, p))
            gt = self.reader.read(rec, "gt", t0, t1, (y * SCALE, x * SCALE, p * SCALE, p * SCALE))
            return lr, gt
        # LR on the fly: degrade a GT window a few LR pixels wider than the patch, keep its centre.
        y0, x0 = max(y - DEGRADE_MARGIN, 0), max(x - DEGRADE_MARGIN, 0)
        y1, x1 = min(y + p + DEGRADE_MARGIN, lh), min(x + p + DEGRADE_MARGIN, lw)
        window = self.reader.read(rec, "gt", t0, t1, (y0 * SCALE, x0 * SCALE, (y1 - y0) * SCALE, (x1 - x0) * SCALE))
        lr = DEGRADERS[self.s.lr_mode](window)[:, y - y0:y - y0 + p, x - x0:x - x0 + p]
        gt = window[:, (y - y0) * SCALE:(y - y0 + p) * SCALE, (x - x0) * SCALE:(x - x0 + p) * SCALE]
        return lr, gt


def augment(lr: np.ndarray, gt: np.ndarray | None, rng: np.random.Generator, flip: bool, rotate: bool,
            reverse: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The same random flips / transpose / time reversal on every frame of both clips (T, H, W, 3); ``gt`` may
    be None (LR-only data)."""
    clips = [lr] if gt is None else [lr, gt]
    if flip and rng.random() < 0.5:
        clips = [c[:, :, ::-1] for c in clips]
    if flip and rng.random() < 0.5:
        clips = [c[:, ::-1] for c in clips]
    if rotate and rng.random() < 0.5:
        clips = [c.transpose(0, 2, 1, 3) for c in clips]
    if reverse and rng.random() < 0.5:
        clips = [c[::-1] for c in clips]
    return clips[0], (None if gt is None else clips[1])


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))


# -- LR-only clips (no GT) ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LRClip:
    """One LR clip with no GT: frame files read as needed, or a video decoded once into memory."""

    name: str
    path: Path
    frames: int
    size: tuple[int, int]                        # (h, w)
    files: tuple[Path, ...] | None = None        # a folder of frames
    decoded: tuple[np.ndarray, ...] | None = None   # a video's frames, uint8 (h, w, 3) each

    def read(self, t0: int, t1: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """Frames ``t0:t1``, window (y, x, h, w), uint8 (T, h, w, 3)."""
        y, x, h, w = box
        if self.decoded is not None:
            return np.stack([f[y:y + h, x:x + w] for f in self.decoded[t0:t1]])
        out = []
        for path in self.files[t0:t1]:
            img = _read_png(path)
            if img.shape[:2] != self.size:
                raise DatasetError(f"LR frame {path} is {img.shape[0]}x{img.shape[1]} but the clip's first frame is "
                                   f"{self.size[0]}x{self.size[1]} (HxW): all frames of a clip must match")
            out.append(img[y:y + h, x:x + w])
        return np.stack(out)


def load_lr_clips(root: str | os.PathLike | None, cache_limit_mb: int) -> list[LRClip]:
    """The LR clips under ``root`` (a video file, a folder of frames, or a folder of clip folders / videos).

    Frames are read with ``core.io.source.open_source``. A frame folder stays on disk (its frames are read as
    patches need them); a video cannot be read at random, so its frames are decoded once into memory, all videos
    together at most ``cache_limit_mb`` MiB: past that a ``DatasetError`` says so before any training (and before
    more than the limit is held).
    """
    if not root:
        raise DatasetError("no LR clips given: set data.lr_root (a video file, a folder of frames or of clips)")
    root = Path(root)
    try:
        found = find_clips(root)
    except ClipError as e:
        raise DatasetError(str(e)) from None
    budget = cache_limit_mb * 2**20
    clips = []
    for path in found:
        name = path.relative_to(root).as_posix() if path != root else path.name
        try:
            src = open_source(path)
        except ClipError as e:
            raise DatasetError(str(e)) from None
        if isinstance(src, FolderSource):
            clips.append(LRClip(name, path, len(src.files), src.size, files=tuple(src.files)))
            continue
        frames = _decode_within(src, budget, cache_limit_mb)
        budget -= sum(f.nbytes for f in frames)
        clips.append(LRClip(name, path, len(frames), src.size, decoded=tuple(frames)))
    return clips


def _decode_within(src, budget: int, limit_mb: int) -> list[np.ndarray]:
    """Every frame of a video source, refusing (early when its header gives the count) past ``budget`` bytes."""
    h, w = src.size
    frame_bytes = h * w * 3

    others = "" if budget == limit_mb * 2**20 else " with the videos before it"

    def refuse(frames: str) -> DatasetError:
        return DatasetError(f"LR video {src.path}: {frames} of {h}x{w} (HxW) do not fit in data.lr_cache_mb = "
                            f"{limit_mb} MiB{others} (videos are decoded into memory once): raise data.lr_cache_mb, "
                            f"or extract the frames into a folder (read from disk as needed)")

    if src.count and src.count * frame_bytes > budget:
        raise refuse(f"its {src.count} frames ({src.count * frame_bytes / 2**20:.0f} MiB)")
    frames: list[np.ndarray] = []
    try:
        for frame in src:
            if (len(frames) + 1) * frame_bytes > budget:
                raise refuse(f"more than {len(frames)} frames")
            frames.append(frame)
    except ClipError as e:
        raise DatasetError(str(e)) from None
    return frames


def check_lr_clips(clips: Sequence[LRClip], clip_length: int, patch: int) -> None:
    """Every LR clip must hold ``clip_length`` frames and a patch of ``patch`` pixels."""
    if not clips:
        raise DatasetError("no LR clips to train on")
    short = [c for c in clips if c.frames < clip_length]
    if short:
        c = short[0]
        raise DatasetError(f"LR clip {c.name} has {c.frames} frames, fewer than data.clip_length = {clip_length} "
                           f"({len(short)} of {len(clips)} clips are too short)")
    small = [c for c in clips if min(c.size) < patch]
    if small:
        c = small[0]
        raise DatasetError(f"LR clip {c.name}: frames of {c.size[0]}x{c.size[1]} (HxW) are smaller than a patch of "
                           f"{patch}; lower data.patch_size")


class LRPatches(Dataset):
    """Sample ``i``: a random LR clip, start frame and patch, augmented — uint8 (T, 3, p, p), with an empty GT
    (shape (0,)) so batches keep the (LR, GT) form the training loop takes. Drawn by index as ``TrainPatches``."""

    has_gt = False

    def __init__(self, clips: Sequence[LRClip], settings: PatchSettings, seed: int = 0) -> None:
        check_lr_clips(clips, settings.clip_length, settings.patch_size)
        self.clips = list(clips)
        self.s = settings
        self.seed = seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, index))
        clip = self.clips[int(rng.integers(len(self.clips)))]
        s = self.s
        t0 = int(rng.integers(clip.frames - s.clip_length + 1))
        h, w = clip.size
        y, x = int(rng.integers(h - s.patch_size + 1)), int(rng.integers(w - s.patch_size + 1))
        lr = clip.read(t0, t0 + s.clip_length, (y, x, s.patch_size, s.patch_size))
        lr, _ = augment(lr, None, rng, s.flip, s.rotate, s.reverse)
        return _to_tensor(lr), torch.zeros(0, dtype=torch.uint8)


class IterationSampler(Sampler[list[int]]):
    """Batches of sample indices for iterations ``start..total-1``, this process's share only.

    Iteration ``k`` of rank ``r`` (of ``world``) takes indices ``(k·world + r)·b … + b − 1``: the ranks never
    overlap, and a resumed run starts exactly where the interrupted one stopped.
    """

    def __init__(self, start: int, total: int, batch_per_rank: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.total, self.batch, self.rank, self.world = start, total, batch_per_rank, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(self.start, self.total):
            base = (k * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(self.total - self.start, 0)


# -- validation clips --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValClip:
    name: str
    lr: np.ndarray                           # (T, h, w, 3) uint8
    gt: np.ndarray                           # (T, 4h, 4w, 3) uint8


def load_val_clip(rec: ClipRecord, reader: FrameReader, lr_mode: str, max_frames: int = 0,
                  crop: int = 0) -> ValClip:
    """A whole validation clip (or its first ``max_frames`` frames, centre ``crop`` LR pixels)."""
    n = rec.frames if max_frames <= 0 else min(max_frames, rec.frames)
    lh, lw = rec.gt_size[0] // SCALE, rec.gt_size[1] // SCALE
    ch, cw = (min(crop, lh), min(crop, lw)) if crop > 0 else (lh, lw)
    y, x = (lh - ch) // 2, (lw - cw) // 2
    if lr_mode == "disk":
        lr = reader.read(rec, "lr", 0, n, (y, x, ch, cw))
        gt = reader.read(rec, "gt", 0, n, (y * SCALE, x * SCALE, ch * SCALE, cw * SCALE))
    else:  # degrade whole frames, as a published LR set would be made, then crop
        full = reader.read(rec, "gt", 0, n, (0, 0, lh * SCALE, lw * SCALE))
        lr = DEGRADERS[lr_mode](full)[:, y:y + ch, x:x + cw]
        gt = full[:, y * SCALE:(y + ch) * SCALE, x * SCALE:(x + cw) * SCALE]
    return ValClip(rec.name, np.ascontiguousarray(lr), np.ascontiguousarray(gt))

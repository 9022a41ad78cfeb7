"""Clips as numpy arrays: read a folder of frames or a video, find clips in a dataset tree, write results.

Everything downstream (degradations, models, metrics, the GUI) takes one shape: uint8 RGB (T, H, W, 3).
Conversions that change pixel data (grey, 16-bit, alpha, float) are allowed but never silent: one image file is
read by ``image_file.read_frame``, which returns a note per conversion, and ``read_clip`` turns them into one
``FrameConversionWarning`` per kind per clip (not one per frame, which would drown the log).
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.errors import ClipError, UserError
from core.io.image_file import IMAGE_EXTS, FrameConversionWarning, encode_frame, probe_frame, read_frame
from core.io.missing import os_reason, what_is, why_missing
from core.io.output import staged_folder

__all__ = [
    "VIDEO_EXTS",
    "Clip",
    "natural_key",
    "list_frames",
    "probe_folder",
    "read_clip",
    "find_clips",
    "check_output_names",
    "write_frames",
    "write_video",
    "frames_to_tensor",
    "tensor_to_frames",
]

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass
class Clip:
    """One clip in memory: ``frames`` is uint8 (T, H, W, 3) RGB; ``names`` are the frame file stems."""

    name: str
    frames: np.ndarray
    names: list[str] = field(default_factory=list)
    source: Path = Path()
    fps: float | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


# --------------------------------------------------------------------------------------------- listing
def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``2.png`` before ``10.png``."""
    parts = re.split(r"(\d+)", name.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS and p.is_file() and not p.name.startswith(".")


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, naturally sorted (hidden files, e.g. temp files, skipped).

    Two files with one name (``0001.jpg`` and ``0001.png``) are refused: which one is frame 1 is a guess, and
    output frames are named by the input's names, so one result would overwrite the other.
    """
    folder = Path(folder)
    files = sorted((p for p in folder.iterdir() if _is_image(p)), key=lambda p: natural_key(p.name))
    _check_no_odd_frames(folder)
    _check_unique_names(folder, files)
    return files


def _check_no_odd_frames(folder: Path) -> None:
    """Refuse an entry named like a frame that is no file to read (a device, FIFO, socket, broken link or link
    loop): skipped, it would be a frame lost without a word, and the clip one frame shorter."""
    for p in folder.iterdir():
        if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".") and not p.is_file() and not p.is_dir():
            kind = why_missing(p) or "not a regular file (a device, FIFO or socket)"
            raise ClipError(f"{p} is named like a frame but is {kind}: replace it with the image file, or remove it")


def _check_unique_names(folder: Path, files: Sequence[Path]) -> None:
    """Refuse frames whose names differ only in extension or letter case (one output name for both, and a
    case-insensitive disk, where the output may go, cannot hold both)."""
    seen: dict[str, Path] = {}
    for f in files:
        other = seen.setdefault(f.stem.casefold(), f)
        if other is not f:
            raise ClipError(f"{folder} holds both {other.name} and {f.name}: two frames with one name (outputs are "
                            f"named after the frames); keep one of them")


# --------------------------------------------------------------------------------------------- reading
def _mismatch(folder: Path, name: str, size: tuple[int, int], first: str, first_size: tuple[int, int]) -> ClipError:
    """The one wording for frames of different sizes in one clip; sizes are (h, w)."""
    return ClipError(f"frame {name} in {folder} is {size[0]}x{size[1]} but {first} is {first_size[0]}x"
                     f"{first_size[1]} (HxW): all frames must match")


def probe_folder(folder: Path, files: Sequence[Path]) -> tuple[int, int]:
    """(h, w) of every frame in ``files``, from the headers alone (nothing decoded).

    Why all of them, not the first: an oversized or odd-sized frame in the middle of a clip would otherwise be
    met after part of the clip was decoded or computed.
    """
    first = probe_frame(files[0])
    size = (first.height, first.width)
    for f in files[1:]:
        header = probe_frame(f)
        if (header.height, header.width) != size:
            raise _mismatch(folder, f.name, (header.height, header.width), files[0].name, size)
    return size


def warn_frame_notes(clip_name: str, counts: dict[str, int], total: int) -> None:
    """One warning per kind of conversion (16-bit, alpha, gray...) a clip's frames needed, with how many."""
    for note, n in counts.items():
        warnings.warn(FrameConversionWarning(f"clip {clip_name}: {note} ({n} of {total} frames)"), stacklevel=3)


def _read_folder(folder: Path, max_frames: int | None) -> Clip:
    files = list_frames(folder)
    if not files:
        raise ClipError(f"no image frames in {folder} (accepted: {', '.join(IMAGE_EXTS)}, any letter case)")
    if max_frames is not None:
        files = files[:max_frames]
    probe_folder(folder, files)         # every size bounded and equal before anything is decoded
    frames: list[np.ndarray] = []
    counts: dict[str, int] = {}
    for f in files:
        img, notes = read_frame(f)
        if frames and img.shape != frames[0].shape:
            raise _mismatch(folder, f.name, img.shape[:2], files[0].name, frames[0].shape[:2])
        for n in notes:
            counts[n] = counts.get(n, 0) + 1
        frames.append(img)
    warn_frame_notes(folder.name, counts, len(files))
    return Clip(name=folder.name, frames=np.stack(frames), names=[f.stem for f in files], source=folder, fps=None)


def _read_video(path: Path, max_frames: int | None) -> Clip:
    from core.io.video import VideoSource   # PyAV (~0.2 s to import) only when a video is read; why: see there

    source = VideoSource(path, max_frames)
    frames = np.stack(list(source))
    return Clip(name=source.name, frames=frames, names=source.frame_names, source=path, fps=source.fps)


def read_clip(path: str | os.PathLike, max_frames: int | None = None) -> Clip:
    """Read a folder of frames (natural order) or a video file into a ``Clip`` (first ``max_frames`` only)."""
    p = Path(path)
    if max_frames is not None and max_frames < 1:
        raise UserError(f"max_frames must be at least 1, got {max_frames}")
    missing = why_missing(p, "file or folder")
    if missing is not None:
        raise ClipError(f"clip not found: {p} ({missing})")
    if p.is_dir():
        return _read_folder(p, max_frames)
    if p.suffix.lower() in VIDEO_EXTS:
        return _read_video(p, max_frames)
    if p.suffix.lower() in IMAGE_EXTS:
        raise ClipError(f"{p} is a single image, not a clip: give the folder that holds the frames")
    raise ClipError(
        f"{p} is neither a folder of frames nor a video (video types: {', '.join(VIDEO_EXTS)})"
    )


# --------------------------------------------------------------------------------------------- dataset trees
def _has_frames(folder: Path) -> bool:
    return any(_is_image(p) for p in folder.iterdir())


def _subdirs(folder: Path) -> list[Path]:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: natural_key(d.name))


def find_clips(root: str | os.PathLike, max_depth: int = 3) -> list[Path]:
    """Clip folders (and video files) under ``root``, in natural order.

    A folder that holds frames is one clip and is not searched further; otherwise its sub-folders are
    searched, up to ``max_depth`` levels, so both REDS (``train_sharp/000/*.png``) and Vimeo-90K
    (``sequences/00001/0001/im1.png``) trees work. Video files met on the way are clips too.
    """
    root = Path(root)
    missing = why_missing(root, "folder")
    if missing is not None:
        raise ClipError(f"clip folder not found: {root} ({missing})")
    if root.is_file():
        if root.suffix.lower() in VIDEO_EXTS:
            return [root]
        raise ClipError(f"{root} is a file, not a folder of clips or a video")
    if not root.is_dir():
        raise ClipError(f"{root} is {what_is(root)}, not a folder of frames or a video")

    def walk(folder: Path, depth: int) -> list[Path]:
        if _has_frames(folder):
            return [folder]
        found = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS),
                       key=lambda p: natural_key(p.name))
        if depth < max_depth:
            for d in _subdirs(folder):
                found += walk(d, depth + 1)
        return found

    try:
        clips = walk(root, 0)
    except OSError as e:                # a folder on the way that cannot be listed (mode 000, gone meanwhile)
        raise ClipError(f"cannot list {e.filename or root}: {os_reason(e, e.filename or root, 'folder')}") from None
    if not clips:
        raise ClipError(
            f"no clips under {root}: expected a folder of frames ({', '.join(IMAGE_EXTS)}), sub-folders of "
            f"frames (up to {max_depth} levels deep), or video files"
        )
    return clips


# --------------------------------------------------------------------------------------------- writing
def _check_frames(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or arr.shape[0] == 0:
        raise UserError(f"expected uint8 RGB frames shaped (T, H, W, 3), got {arr.dtype} {arr.shape}")
    return arr


def check_output_names(names: Sequence[str], folder: str | os.PathLike) -> None:
    """Refuse frame names that would land on one file (equal, or equal but for letter case on a disk that ignores
    it): a frame written over another would leave fewer files than the frames reported written."""
    if len({n.casefold() for n in names}) != len(names):
        raise UserError(f"cannot write {folder}: two output frames would have the same name")


def write_frames(
    frames: np.ndarray | Sequence[np.ndarray],
    folder: str | os.PathLike,
    names: Sequence[str] | None = None,
    ext: str = "png",
    *,
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike] = (),
) -> list[Path]:
    """Write RGB uint8 frames as ``folder/<name>.<ext>``; the folder appears only when every frame is written.

    ``folder`` must be new or empty (``overwrite`` replaces an existing folder as a whole, at the very end).
    """
    arr = _check_frames(frames)
    if names is None:
        names = [f"{i:04d}" for i in range(len(arr))]
    if len(names) != len(arr):
        raise UserError(f"{len(names)} names given for {len(arr)} frames")
    check_output_names(names, folder)
    encode_frame(arr[0], ext)  # refuse a bad extension before anything is created
    ext = ext.lower().lstrip(".")
    with staged_folder(folder, overwrite=overwrite, inputs=inputs) as tmp:
        for img, name in zip(arr, names):
            (tmp / f"{name}.{ext}").write_bytes(encode_frame(img, ext))
    return [Path(folder) / f"{name}.{ext}" for name in names]


def write_video(
    frames: np.ndarray | Sequence[np.ndarray],
    path: str | os.PathLike,
    fps: float = 25,
    *,
    overwrite: bool = False,
    inputs: Sequence[str | os.PathLike] = (),
    codec: str | None = None,
    quality: int | None = None,
) -> Path:
    """Write RGB uint8 frames as a video (type from the extension, see ``video_write.check_video_output``).

    The file appears only when complete (``video_write.VideoSink``); H.264 CRF 18 unless ``codec``/``quality`` say.
    """
    from core.io.video_write import VideoSink

    arr = _check_frames(frames)
    with VideoSink(path, fps=fps, overwrite=overwrite, inputs=inputs, codec=codec, quality=quality) as sink:
        for img in arr:
            sink.write(img)
    return Path(path)


# --------------------------------------------------------------------------------------------- tensors
def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) RGB -> float32 (1, T, 3, H, W) in [0, 1], the layout BasicVSR takes."""
    arr = _check_frames(frames)
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float().div_(255.0)
    return t.unsqueeze(0).contiguous()


def tensor_to_frames(t: torch.Tensor) -> np.ndarray:
    """(1, T, 3, H, W) or (T, 3, H, W) float in [0, 1] -> uint8 (T, H, W, 3).

    As BasicSR's ``tensor2img``: clamp to [0, 1], multiply by 255 in float32, round half to even.
    """
    if t.dim() == 5:
        if t.shape[0] != 1:
            raise UserError(f"expected a batch of one clip, got batch size {t.shape[0]}")
        t = t[0]
    if t.dim() != 4 or t.shape[1] != 3:
        raise UserError(f"expected a (1, T, 3, H, W) or (T, 3, H, W) tensor, got {tuple(t.shape)}")
    x = (t.detach().to("cpu", torch.float32).clamp(0.0, 1.0) * 255.0).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()

"""Frame sources and sinks (Contract 3): clips read lazily one frame at a time, results written as they come.

Why: a clip in memory costs ``T x H x W x 3`` bytes before the network even starts, and its super-resolved frames
16 times that. The streaming engine (``core.stream``) reads a source frame by frame and hands each output frame to
a sink, so neither the input nor the output has to fit in memory. Folders and arrays live here; video files are
``core.io.video`` and ``core.io.video_write`` (PyAV), imported only when a video path is opened.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np

from core.errors import ClipError, UserError
from core.io.frames import VIDEO_EXTS, check_output_names, list_frames, probe_folder, warn_frame_notes
from core.io.image_file import IMAGE_EXTS, encode_frame, read_frame
from core.io.missing import why_missing
from core.io.output import staged_folder

__all__ = ["FrameSource", "FrameSink", "FolderSource", "ArraySource", "FolderSink", "open_source", "open_sink",
           "check_sink", "is_video_path"]

PathLike = str | os.PathLike


@runtime_checkable
class FrameSource(Protocol):
    """A clip read lazily, in order: uint8 (h, w, 3) RGB frames, one at a time."""

    name: str
    path: Path | None
    fps: float | None
    size: tuple[int, int]            # (h, w), known on open
    count: int | None                # exact for folders and arrays; the container's claim (maybe None) for video
    has_audio: bool

    @property
    def frame_names(self) -> list[str]: ...   # stems for folder output

    def __iter__(self) -> Iterator[np.ndarray]: ...


@runtime_checkable
class FrameSink(Protocol):
    """A context manager; ``write`` appends one uint8 RGB frame; the output appears only on a clean exit."""

    def __enter__(self) -> "FrameSink": ...

    def __exit__(self, exc_type, exc, tb) -> bool | None: ...

    def write(self, frame: np.ndarray) -> None: ...


def is_video_path(path: PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTS


def _check_max_frames(max_frames: int | None) -> None:
    if max_frames is not None and max_frames < 1:
        raise UserError(f"max_frames must be at least 1, got {max_frames}")


class FolderSource:
    """The image files of a folder (natural order), decoded one at a time.

    Opening lists the files, reads every header (each size bounded and all equal, nothing decoded) and decodes the
    first file, so an oversized, odd-sized or unreadable first frame fails before any work.
    Conversions to 8-bit RGB are reported as ``core.io.image_file.read_frame`` does: one ``FrameConversionWarning``
    per kind at the end of an iteration.
    """

    def __init__(self, folder: PathLike, max_frames: int | None = None):
        _check_max_frames(max_frames)
        self.path = Path(folder)
        self.name = self.path.name
        if not self.path.is_dir():
            raise ClipError(f"clip not found: {self.path} is not a folder")
        self.files = list_frames(self.path)[:max_frames]
        if not self.files:
            raise ClipError(f"no image frames in {self.path} (accepted: {', '.join(IMAGE_EXTS)}, any letter case)")
        self.size: tuple[int, int] = probe_folder(self.path, self.files)
        read_frame(self.files[0])
        self.count: int | None = len(self.files)
        self.fps: float | None = None
        self.has_audio = False

    @property
    def frame_names(self) -> list[str]:
        return [f.stem for f in self.files]

    def __iter__(self) -> Iterator[np.ndarray]:
        counts: dict[str, int] = {}
        for f in self.files:
            img, notes = read_frame(f)
            if img.shape[:2] != self.size:
                raise ClipError(f"frame {f.name} in {self.path} is {img.shape[0]}x{img.shape[1]} but "
                                f"{self.files[0].name} is {self.size[0]}x{self.size[1]} (HxW): all frames must match")
            for n in notes:
                counts[n] = counts.get(n, 0) + 1
            yield img
        warn_frame_notes(self.name, counts, len(self.files))


class ArraySource:
    """Frames already in memory (uint8 (T, H, W, 3)); also random access by index (``frames[i]``)."""

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray], name: str = "clip", fps: float | None = None,
                 names: Sequence[str] | None = None, path: PathLike | None = None):
        arr = frames if isinstance(frames, np.ndarray) else np.stack(list(frames))
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
            raise UserError(f"expected uint8 RGB frames shaped (T, H, W, 3), got {arr.dtype} {arr.shape}")
        self.frames = arr
        self.name = name
        self.fps = fps
        self.path = None if path is None else Path(path)
        self.size = (int(arr.shape[1]), int(arr.shape[2]))
        self.count: int | None = len(arr)
        self.has_audio = False
        self._names = list(names) if names is not None else [f"{i:08d}" for i in range(len(arr))]

    @property
    def frame_names(self) -> list[str]:
        return self._names

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.frames)


class FolderSink:
    """PNG frames written one at a time into a staged folder (``core.io.output``); the folder appears complete.

    Frame ``i`` is named ``names[i]`` when given, else ``%08d``. Names must differ (also in letter case): a frame
    is never written over another, so ``frames_written`` is the number of files in the folder.
    """

    def __init__(self, folder: PathLike, *, names: Sequence[str] = (), inputs: Iterable[PathLike | None] = (),
                 overwrite: bool = False):
        self.path = Path(folder)
        self.names = list(names)
        check_output_names(self.names, self.path)
        self.inputs = tuple(inputs)
        self.overwrite = overwrite
        self.frames_written = 0
        self._ctx = None
        self._tmp: Path | None = None

    def __enter__(self) -> "FolderSink":
        self._ctx = staged_folder(self.path, inputs=self.inputs, overwrite=self.overwrite)
        self._tmp = self._ctx.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        ctx, self._ctx, self._tmp = self._ctx, None, None
        if exc_type is None and self.frames_written == 0:
            err = UserError(f"cannot write {self.path}: no frames were given")
            if not ctx.__exit__(type(err), err, None):
                raise err
            return False
        return bool(ctx.__exit__(exc_type, exc, tb))

    def write(self, frame: np.ndarray) -> None:
        if self._tmp is None:
            raise RuntimeError("FolderSink.write called outside 'with'")
        i = self.frames_written
        name = self.names[i] if i < len(self.names) else f"{i:08d}"
        data = encode_frame(frame, "png")
        try:
            with (self._tmp / f"{name}.png").open("xb") as f:      # never over an earlier frame
                f.write(data)
        except FileExistsError:
            raise UserError(f"cannot write {self.path}: frame {i} would overwrite the frame named {name}.png") from None
        self.frames_written += 1


def open_source(path: PathLike, max_frames: int | None = None) -> FrameSource:
    """A folder of frames -> ``FolderSource``; a video file -> ``core.io.video.VideoSource``."""
    _check_max_frames(max_frames)
    p = Path(path)
    missing = why_missing(p, "file or folder")
    if missing is not None:
        raise ClipError(f"clip not found: {p} ({missing})")
    if p.is_dir():
        return FolderSource(p, max_frames)
    if is_video_path(p):
        from core.io.video import VideoSource   # PyAV is imported only for videos

        return VideoSource(p, max_frames)
    if p.suffix.lower() in IMAGE_EXTS:
        raise ClipError(f"{p} is a single image, not a clip: give the folder that holds the frames")
    raise ClipError(f"{p} is neither a folder of frames nor a video (video types: {', '.join(VIDEO_EXTS)})")


def check_sink(path: PathLike, codec: str | None = None, quality: int | None = None) -> None:
    """Refuse, before any work, an output ``open_sink`` could not write with this codec and quality."""
    if is_video_path(path):
        from core.io.video_write import check_video_output

        check_video_output(path, codec, quality)
    elif codec is not None or quality is not None:
        raise UserError(f"{Path(path)} is a folder of PNG frames: --codec and --quality apply to video outputs only")


def open_sink(path: PathLike, *, fps: float | None, inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
              audio_from: FrameSource | None = None, codec: str | None = None, quality: int | None = None,
              names: Sequence[str] = ()) -> FrameSink:
    """A video path -> ``core.io.video_write.VideoSink`` (fps defaults to 25); anything else -> a ``FolderSink``.

    ``names``: frame stems for a folder output. ``codec``/``quality`` only apply to videos (refused otherwise).
    """
    check_sink(path, codec, quality)
    if is_video_path(path):
        from core.io.video_write import VideoSink

        return VideoSink(path, fps=fps or 25, inputs=inputs, overwrite=overwrite, audio_from=audio_from,
                         codec=codec, quality=quality)
    return FolderSink(path, names=names, inputs=inputs, overwrite=overwrite)

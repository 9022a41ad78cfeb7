"""Video files read as streams: frames decoded one at a time in display order (writing them: ``video_write``).

Why PyAV (FFmpeg in a wheel) and not OpenCV: OpenCV cannot carry an audio track, keeps the frame rate only as a
float (it wrote 30000/1001 as 2997/100: one frame off every 9 hours), says nothing when a frame in the middle
is corrupt or the file ends before its header says, and its wheel has no H.264 encoder (``mp4v`` only), so its
outputs are ~3x larger at the same quality. Measured with ``bench/bench_video.py`` (300 frames of 256x448 HxW, the
4x output size of the demo clip; CPU time of all threads, best of 3, on the 2-core EPYC shared with other jobs):

    writer                    encode CPU ms/f  size KiB   decode CPU ms/f (OpenCV / PyAV)   Y-PSNR dB
    OpenCV mp4v (.mp4)                   2.69      7623              0.83 / 1.13                37.81
    PyAV h264 CRF 18 (.mp4)             12.75      2357              1.95 / 1.87                38.19
    PyAV mpeg4 q2 (.avi)                 2.38     11309              0.94 / 1.20                40.34

Decoding costs about the same either way (1-2 ms per frame). Encoding H.264 costs ~5x the CPU of OpenCV's mp4v
but gives a 3.2x smaller file at a slightly higher PSNR, and it stays under a tenth of the dense network's time
for the same frame (~0.2 s at this size on this CPU); OpenCV could not carry the sound at any speed.

Damaged inputs (decided policy):
- a file FFmpeg cannot open, or a codec it cannot decode: ``ClipError`` when the source is opened (the first
  frame is decoded there), before any work;
- a corrupt frame in the middle (undecodable data followed by more data): ``ClipError`` naming the frame index;
  a writer fed from the stream is aborted, so no partial output is left (the output rule removes it);
- a file that ends before its header says (a cut download or recording): the frames decoded up to the cut are
  used and a ``VideoTruncatedWarning`` gives the numbers ("ended after 13 of the 24 frames its header
  announces"). Those frames are intact, and a cut file cannot be repaired by reading it again.
"""
from __future__ import annotations

import numbers
import os
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from core.errors import ClipError, UserError
from core.io.limits import check_frame_size
from core.io.missing import why_missing

__all__ = [
    "VideoTruncatedWarning",
    "VideoSource",
    "as_rate",
    "ffmpeg_reason",
]

MAX_FPS = 1000


class VideoTruncatedWarning(UserWarning):
    """A video ended before the number of frames its header announces; the frames decoded were used."""


def _fraction(value) -> Fraction | None:
    """A PyAV rational (Fraction, or AVRational in PyAV >= 19) as a Fraction; None when unset or zero."""
    if value is None or not value:
        return None
    return Fraction(int(value.numerator), int(value.denominator))


def _ntsc(rate: Fraction | None) -> Fraction | None:
    """Snap a rate within 10 ppm of k*1000/1001 to it: Matroska stores 60000/1001 as 19001/317 (ms ticks)."""
    if rate is None or rate.denominator in (1, 1001):
        return rate
    exact = Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)
    return exact if abs(exact - rate) <= rate * Fraction(1, 100000) else rate


def as_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: floats of NTSC rates (29.97002997..., 23.976) come back as k*1000/1001."""
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps <= MAX_FPS:
        raise UserError(f"frame rate must be a number in (0, {MAX_FPS}], got {fps!r}")
    return _ntsc(Fraction(fps).limit_denominator(1001)) if isinstance(fps, float) else Fraction(fps)


def ffmpeg_reason(err: BaseException) -> str:
    """FFmpeg's message without PyAV's errno prefix and call name."""
    text = getattr(err, "strerror", None) or str(err)
    return str(text).split(";")[0].strip()


class VideoSource:
    """Frames of a video file, decoded lazily in display order as uint8 RGB (Contract 3 ``FrameSource``).

    Opening probes the file and decodes its first frame, so unreadable files and codecs fail before any work.
    Each iteration decodes the file again from the start (a backward and a forward pass may both read it) and
    holds one frame at a time (plus the decoder's own reorder buffer). ``count`` is the container's claim until
    an iteration has run to the end, then the exact number of frames decoded.
    """

    def __init__(self, path: str | os.PathLike, max_frames: int | None = None):
        self.path = Path(path)
        self.name = self.path.stem
        if max_frames is not None and max_frames < 1:
            raise UserError(f"max_frames must be at least 1, got {max_frames}")
        self.max_frames = max_frames
        if not self.path.is_file():
            why = why_missing(self.path) or "not a regular file (a folder, device, FIFO or socket)"
            raise ClipError(f"cannot read video {self.path}: {why}")
        with self._open() as container:
            stream = container.streams.video[0]
            rate = _ntsc(_fraction(stream.average_rate) or _fraction(stream.guessed_rate))
            self.rate: Fraction | None = rate
            self.fps: float | None = float(rate) if rate and 0 < rate <= MAX_FPS else None
            self.header_frames: int | None = int(stream.frames) or None
            tb = _fraction(stream.time_base)
            seconds = float(stream.duration * tb) if stream.duration and tb else (
                container.duration / av.time_base if container.duration else None)
            self._expected = self.header_frames or (round(seconds * rate) if seconds and rate else None)
            self.has_audio = bool(container.streams.audio)
            frames = self._decode(container)
            first = next(frames, None)
            frames.close()
        if first is None:
            raise ClipError(f"cannot read video {self.path}: no frame could be decoded")
        self.size: tuple[int, int] = (int(first.shape[0]), int(first.shape[1]))
        self.count: int | None = self._cap(self.header_frames)

    def _cap(self, n: int | None) -> int | None:
        if n is None:
            return None
        return min(n, self.max_frames) if self.max_frames is not None else n

    @property
    def frame_names(self) -> list[str]:
        """Stems for frame-folder output: ``00000000``, ``00000001``... (as many as ``count``, or none if unknown)."""
        return [f"{i:08d}" for i in range(self.count or 0)]

    def _open(self):
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
            raise ClipError(f"cannot read video {self.path}: not a video file FFmpeg can read ({ffmpeg_reason(err)})")
        if not container.streams.video:
            container.close()
            raise ClipError(f"cannot read video {self.path}: the file has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            container.close()
            raise ClipError(f"cannot read video {self.path}: its video codec cannot be decoded by this FFmpeg build")
        try:   # untrusted header: the frame-size bounds every reader shares, before anything is decoded
            check_frame_size(stream.codec_context.width, stream.codec_context.height, f"cannot read video {self.path}")
        except ClipError:
            container.close()
            raise
        return container   # default (slice) threading: frame threading hides decode errors and delays frames

    def __iter__(self) -> Iterator[np.ndarray]:
        n = 0
        with self._open() as container:
            for frame in self._decode(container):
                if self.max_frames is not None and n >= self.max_frames:
                    return
                if frame.shape[:2] != self.size:
                    raise ClipError(f"cannot read video {self.path}: frame {n} is {frame.shape[0]}x{frame.shape[1]}"
                                    f" but the video starts at {self.size[0]}x{self.size[1]} (HxW; size changes "
                                    f"mid-stream)")
                yield frame
                n += 1
        self.count = self._cap(n)
        if self._expected is not None and n + 1 < self._expected and (self.max_frames is None or n < self.max_frames):
            warnings.warn(VideoTruncatedWarning(
                f"video {self.path} ended after {n} of the {self._expected} frames its header announces (the file "
                f"is cut short?): the {n} decoded frames are used"), stacklevel=2)

    def _decode(self, container) -> Iterator[np.ndarray]:
        """Decode packet by packet; tell a cut-off end (no data after the bad packet) from a corrupt middle."""
        stream = container.streams.video[0]
        bad: str | None = None
        stop = False
        n = 0
        try:
            for packet in container.demux(stream):
                if bad is not None and packet.size:   # more data after a bad packet: damage in the middle
                    raise ClipError(f"cannot read video {self.path}: {bad}")
                try:   # after a bad packet only the final flush comes here: the frames it returns are intact
                    frames = packet.decode()
                except av.error.FFmpegError as err:
                    bad = bad or f"frame {self._index(packet, stream)} is corrupt ({ffmpeg_reason(err)})"
                    continue
                for frame in frames:
                    if frame.is_corrupt:
                        bad = bad or f"frame {self._index(frame, stream)} is corrupt (damaged data)"
                        stop = True
                    elif bad is not None and self._index(frame, stream) not in (str(n), "?"):
                        stop = True   # the flush holds a frame after the lost one: a gap, keep what precedes it
                    if stop:   # never skip a frame: what follows a damaged one in display order is dropped
                        continue
                    n += 1
                    yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as err:   # the demuxer itself gave up mid-file
            raise ClipError(f"cannot read video {self.path}: {ffmpeg_reason(err)}") from None

    def _index(self, item, stream) -> str:
        """Display index of a packet or frame, from its timestamp (``?`` when it has none)."""
        if item.pts is None or not self.rate or not stream.time_base:
            return "?"
        start = stream.start_time or 0
        return str(round((item.pts - start) * _fraction(stream.time_base) * self.rate))

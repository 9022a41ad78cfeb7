"""Video files as streams: read frames one at a time, write them one at a time, keep the sound.

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

Defaults: H.264 (libx264, CRF 18, yuv420p, preset medium) in .mp4, .mkv and .mov; MPEG-4 Part 2 (qscale 2) in
.avi, which has no presentation timestamps for H.264's reordered frames. Odd frame sizes cannot be 4:2:0
subsampled; they are encoded 4:4:4 (H.264 High 4:4:4) rather than padded or cropped, so the output keeps exactly
the frames given. 4x SR outputs are always even-sized. The YUV is tagged BT.601 (the matrix swscale used), so
players do not assume BT.709 for HD sizes and shift the colours.

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

import io
import numbers
import os
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import av
import numpy as np

from core.errors import ClipError, UserError
from core.io.limits import check_frame_size
from core.io.output import OutputError, staged_file
from core.io.video_audio import AudioCarrier, AudioNotCarried

__all__ = [
    "VIDEO_OUTPUT_EXTS",
    "VIDEO_CODECS",
    "VideoTruncatedWarning",
    "VideoSource",
    "VideoSink",
    "check_video_output",
    "as_rate",
]

MAX_FPS = 1000
_BT601, _MPEG_RANGE, _JPEG_RANGE = 6, 1, 2   # AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG, AVCOL_RANGE_JPEG


@dataclass(frozen=True)
class _Codec:
    """One video codec the sink offers: its FFmpeg encoder, quality option and scale, pixel formats."""

    encoder: str
    option: str | None        # the encoder option that ``quality`` sets (None: lossless, no quality)
    default: int | None
    low: int = 0
    high: int = 51
    even_fmt: str = "yuv420p"
    odd_fmt: str | None = "yuv444p"   # for odd frame sizes (None: the codec cannot encode them)
    note: str = ""


VIDEO_CODECS: dict[str, _Codec] = {
    "h264": _Codec("libx264", "crf", 18, 0, 51, note="CRF, lower is better"),
    "h265": _Codec("libx265", "crf", 20, 0, 51, note="CRF, lower is better"),
    "mpeg4": _Codec("mpeg4", "qscale", 2, 1, 31, odd_fmt=None, note="qscale, lower is better"),
    "mjpeg": _Codec("mjpeg", "qscale", 2, 1, 31, even_fmt="yuvj420p", odd_fmt="yuvj444p",
                    note="qscale, lower is better"),
    "ffv1": _Codec("ffv1", None, None, even_fmt="bgr0", odd_fmt="bgr0", note="lossless RGB"),
}


@dataclass(frozen=True)
class _Container:
    format: str
    video: str                # default codec (a VIDEO_CODECS key)
    audio: str                # encoder for audio that cannot be copied as it is


VIDEO_OUTPUT_EXTS: dict[str, _Container] = {
    ".mp4": _Container("mp4", "h264", "aac"),
    ".mkv": _Container("matroska", "h264", "aac"),
    ".mov": _Container("mov", "h264", "aac"),
    ".avi": _Container("avi", "mpeg4", "libmp3lame"),
}


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


def _reason(err: BaseException) -> str:
    """FFmpeg's message without PyAV's errno prefix and call name."""
    text = getattr(err, "strerror", None) or str(err)
    return str(text).split(";")[0].strip()


# --------------------------------------------------------------------------------------------- reading
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
            why = ("no such file" if not self.path.exists() and not self.path.is_symlink()
                   else "a link to nothing (or a link loop)" if not self.path.exists()
                   else "not a regular file (a folder, device, FIFO or socket)")
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
            raise ClipError(f"cannot read video {self.path}: not a video file FFmpeg can read ({_reason(err)})")
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
                    bad = bad or f"frame {self._index(packet, stream)} is corrupt ({_reason(err)})"
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
            raise ClipError(f"cannot read video {self.path}: {_reason(err)}") from None

    def _index(self, item, stream) -> str:
        """Display index of a packet or frame, from its timestamp (``?`` when it has none)."""
        if item.pts is None or not self.rate or not stream.time_base:
            return "?"
        start = stream.start_time or 0
        return str(round((item.pts - start) * _fraction(stream.time_base) * self.rate))


# --------------------------------------------------------------------------------------------- writing
def check_video_output(path: str | os.PathLike, codec: str | None = None, quality: int | None = None) -> tuple[
        _Container, str, _Codec]:
    """Refuse, before any work, a video output this module cannot write (type, codec or quality).

    Returns (container, codec name, codec). ``quality`` is the codec's own scale (see ``VIDEO_CODECS``).
    """
    target = Path(path)
    container = VIDEO_OUTPUT_EXTS.get(target.suffix.lower())
    if container is None:
        raise OutputError(f"cannot write video {target}: {target.suffix or 'no extension'} is not a video type "
                          f"this tool writes (accepted: {', '.join(VIDEO_OUTPUT_EXTS)})")
    name = (codec or container.video).lower()
    spec = VIDEO_CODECS.get(name)
    if spec is None:
        raise UserError(f"unknown video codec {codec!r} (accepted: {', '.join(VIDEO_CODECS)})")
    with av.open(io.BytesIO(), "w", format=container.format) as probe:
        accepted = probe.supported_codecs
    if av.Codec(spec.encoder, "w").name not in accepted and name not in accepted:
        ok = [c for c in VIDEO_CODECS if c in accepted]
        raise UserError(f"cannot write {name} video in {target.suffix}: that container takes {', '.join(ok)}")
    if quality is not None:
        if spec.option is None:
            raise UserError(f"{name} is lossless: it takes no quality setting")
        if isinstance(quality, bool) or not isinstance(quality, int) or not spec.low <= quality <= spec.high:
            raise UserError(f"quality for {name} must be an integer in {spec.low}..{spec.high} ({spec.note}), "
                            f"got {quality!r}")
    return container, name, spec


class VideoSink:
    """Encode frames into a video file as they come (Contract 3 ``FrameSink``); the file appears when complete.

    Use as a context manager. The file is built through ``output.staged_file`` (hidden temp beside the target,
    moved into place on a clean exit after the encoder flushed, the trailer was written and the frame count
    re-read from the file matched), so an exception, Ctrl-C or a full disk leaves no file that looks complete
    and the previous target untouched. ``audio_from``: a source whose audio track the output keeps (copied as
    it is when the container takes its codec, otherwise re-encoded), cut to the length of the video.
    """

    def __init__(self, path: str | os.PathLike, *, fps: float | Fraction, inputs: Iterable[str | os.PathLike] = (),
                 overwrite: bool = False, audio_from=None, codec: str | None = None, quality: int | None = None):
        self.path = Path(path)
        self._container, self.codec, self._spec = check_video_output(self.path, codec, quality)
        self.quality = quality if quality is not None else self._spec.default
        self.rate = as_rate(fps)
        self.fps = float(self.rate)
        audio_path = getattr(audio_from, "path", None)
        self._audio_path: Path | None = (Path(audio_path) if getattr(audio_from, "has_audio", False) and audio_path
                                         and Path(audio_path).is_file() else None)
        self._inputs = tuple(inputs) + ((self._audio_path,) if self._audio_path else ())
        self._overwrite = overwrite
        self.frames_written = 0
        self._stack: ExitStack | None = None
        self._out = None
        self._video = None
        self._audio: AudioCarrier | None = None
        self._size: tuple[int, int] | None = None

    # -- context ---------------------------------------------------------------------------------------------
    def __enter__(self) -> "VideoSink":
        self._stack = ExitStack()
        try:
            tmp = self._stack.enter_context(staged_file(self.path, inputs=self._inputs, overwrite=self._overwrite,
                                                        verify=self._verify))
            self._out = self._fail_on_av(lambda: av.open(str(tmp), "w", format=self._container.format))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._stack is not None, "VideoSink used outside 'with'"
        if exc_type is None:
            try:
                self._finish()
            except BaseException as err:
                self._abort()
                if not self._stack.__exit__(type(err), err, err.__traceback__):
                    raise
                return False
        else:
            self._abort()
        return bool(self._stack.__exit__(exc_type, exc, tb))

    # -- frames ----------------------------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Encode one uint8 (H, W, 3) RGB frame; every frame must have the size of the first."""
        if self._out is None:
            raise RuntimeError("VideoSink.write called outside 'with'")
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3):
            raise UserError(f"expected a uint8 RGB frame shaped (H, W, 3), got "
                            f"{getattr(frame, 'dtype', type(frame).__name__)} {getattr(frame, 'shape', '')}")
        if self._size is None:
            self._start(frame.shape[0], frame.shape[1])
        elif frame.shape[:2] != self._size:
            raise UserError(f"frame {self.frames_written} is {frame.shape[0]}x{frame.shape[1]} but the video "
                            f"{self.path.name} is {self._size[0]}x{self._size[1]} (HxW): all frames must match")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames_written
        self._fail_on_av(lambda: [self._out.mux(p) for p in self._video.encode(vf)])
        self.frames_written += 1
        if self._audio is not None:
            self._fail_on_av(lambda: self._audio.copy_until(Fraction(self.frames_written) / self.rate))

    def _start(self, h: int, w: int) -> None:
        spec = self._spec
        fmt = spec.even_fmt if h % 2 == 0 and w % 2 == 0 else spec.odd_fmt
        if fmt is None:
            raise UserError(f"{self.codec} cannot encode the odd frame size {h}x{w} (HxW): use h264, mjpeg or ffv1")
        options = {spec.option: str(self.quality)} if spec.option else {}
        if spec.option == "qscale":   # a fixed quantiser (ffmpeg's -q:v also needs a per-frame quality PyAV lacks)
            options = {"qmin": str(self.quality), "qmax": str(self.quality)}
        stream = self._out.add_stream(spec.encoder, rate=self.rate, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, fmt
        stream.codec_context.time_base = 1 / self.rate
        if fmt.startswith("yuv"):   # say which matrix made the YUV (swscale's default, BT.601): players otherwise
            stream.codec_context.colorspace = _BT601   # guess BT.709 for HD sizes and shift the colours
            stream.codec_context.color_range = _JPEG_RANGE if fmt.startswith("yuvj") else _MPEG_RANGE
        self._video, self._size = stream, (h, w)
        if self._audio_path is not None:
            try:
                self._audio = AudioCarrier(self._out, self._audio_path, self._container.audio)
            except AudioNotCarried as note:   # a silent video beats no video
                warnings.warn(note, stacklevel=3)

    def _finish(self) -> None:
        if self.frames_written == 0:
            raise OutputError(f"cannot write video {self.path}: no frames were given")
        self._fail_on_av(lambda: [self._out.mux(p) for p in self._video.encode(None)])
        if self._audio is not None:
            self._fail_on_av(lambda: self._audio.finish(Fraction(self.frames_written) / self.rate))
            self._audio = None
        out, self._out = self._out, None
        self._fail_on_av(out.close)   # writes the trailer: a full disk shows here at the latest

    def _abort(self) -> None:
        """Close everything without caring for errors: the staged temp file is about to be removed."""
        if self._audio is not None:
            self._audio.close()
            self._audio = None
        if self._out is not None:
            out, self._out = self._out, None
            try:
                out.close()
            except Exception:  # noqa: BLE001 - the file is discarded; the original error is what matters
                pass

    def _fail_on_av(self, action):
        """Run an FFmpeg call; its I/O errors become OSError (disk full -> OutputError in staged_file)."""
        try:
            return action()
        except av.error.FFmpegError as err:
            errno_ = getattr(err, "errno", None)
            if isinstance(err, OSError) and errno_ and errno_ > 0:
                raise OSError(errno_, os.strerror(errno_)) from None
            raise OutputError(f"cannot write video {self.path}: the encoder failed ({_reason(err)})") from None

    def _verify(self, tmp: Path) -> None:
        """Re-read the finished file's packets: it must hold exactly the frames written."""
        try:
            with av.open(str(tmp)) as check:
                stream = check.streams.video[0]
                found = sum(1 for p in check.demux(stream) if p.size)
        except (av.error.FFmpegError, IndexError) as err:
            raise OutputError(f"cannot write video {self.path}: the written file does not read back "
                              f"({_reason(err)}); nothing was replaced") from None
        if found != self.frames_written:
            raise OutputError(f"cannot write video {self.path}: the file holds {found} of the "
                              f"{self.frames_written} frames written; nothing was replaced")


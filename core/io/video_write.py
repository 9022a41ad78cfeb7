"""Video files written as streams: frames encoded one at a time, the sound of a source kept, the file moved into
place only when complete and read back (why PyAV and not OpenCV: see ``core.io.video``).

Defaults: H.264 (libx264, CRF 18, yuv420p, preset medium) in .mp4, .mkv and .mov; MPEG-4 Part 2 (qscale 2) in
.avi, which has no presentation timestamps for H.264's reordered frames. Odd frame sizes cannot be 4:2:0
subsampled; they are encoded 4:4:4 (H.264 High 4:4:4) rather than padded or cropped, so the output keeps exactly
the frames given. 4x SR outputs are always even-sized. The YUV is tagged BT.601 (the matrix swscale used), so
players do not assume BT.709 for HD sizes and shift the colours.
"""
from __future__ import annotations

import io
import os
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

from core.errors import UserError
from core.io.output import OutputError, staged_file
from core.io.video import as_rate, ffmpeg_reason
from core.io.video_audio import AudioCarrier, AudioNotCarried

__all__ = [
    "VIDEO_OUTPUT_EXTS",
    "VIDEO_CODECS",
    "VideoSink",
    "check_video_output",
]

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
            raise OutputError(f"cannot write video {self.path}: the encoder failed ({ffmpeg_reason(err)})") from None

    def _verify(self, tmp: Path) -> None:
        """Re-read the finished file's packets: it must hold exactly the frames written."""
        try:
            with av.open(str(tmp)) as check:
                stream = check.streams.video[0]
                found = sum(1 for p in check.demux(stream) if p.size)
        except (av.error.FFmpegError, IndexError) as err:
            raise OutputError(f"cannot write video {self.path}: the written file does not read back "
                              f"({ffmpeg_reason(err)}); nothing was replaced") from None
        if found != self.frames_written:
            raise OutputError(f"cannot write video {self.path}: the file holds {found} of the "
                              f"{self.frames_written} frames written; nothing was replaced")


"""The audio track of a source video, carried into an output video while its frames are being encoded.

Why a separate reader: the sink writes video frame by frame, so audio is read from the source file alongside,
a packet at a time, up to the time of the last video frame written. The muxer then interleaves both streams
and nothing grows with the clip. Packets are copied as they are (no quality loss, no work) when the output
container takes the codec; otherwise (e.g. Opus or Vorbis into .mov) they are decoded and re-encoded with the
container's usual codec (AAC; MP3 in .avi). Audio is kept in sync with the first video frame of the source
and cut where the video ends (so a ``max_frames`` run gets matching sound).
"""
from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av

__all__ = ["AudioCarrier", "AudioNotCarried"]


class AudioNotCarried(UserWarning):
    """The source's audio track cannot go into the output (raised by ``AudioCarrier``, issued as a warning)."""


class AudioCarrier:
    """Copies (or re-encodes) the first audio stream of ``source`` into the open output container ``out``."""

    def __init__(self, out, source: Path, fallback_encoder: str):
        self._in = av.open(str(source))
        try:
            src = self._in.streams.audio[0]
            video = self._in.streams.video[0] if self._in.streams.video else None
            self._start = (Fraction(video.start_time) * _frac(video.time_base)
                           if video is not None and video.start_time is not None else Fraction(0))
            self._src = src
            self._tb = _frac(src.time_base)
            self._remux = _can_copy(out.format.name.split(",")[0], src)
            if not self._remux and src.codec_context is None:
                raise AudioNotCarried(f"the sound of {source.name} can neither be copied into this container nor "
                                      f"decoded by this FFmpeg build: the output has no sound")
            if self._remux:
                self._dst = out.add_stream_from_template(src)
                self._dst.time_base = self._tb
            else:
                rate = src.codec_context.sample_rate
                self._dst = out.add_stream(fallback_encoder, rate=rate)
                self._dst.layout = src.codec_context.layout
            self._out = out
            self._packets = self._in.demux(src)
            self._held = None      # a packet read ahead (it starts after the last video time asked for)
            self._done = False
        except BaseException:
            self._in.close()
            raise

    def copy_until(self, seconds: Fraction) -> None:
        """Mux every audio packet that starts before ``seconds`` of output video time."""
        while not self._done:
            packet = self._held if self._held is not None else next(self._packets, None)
            self._held = None
            if packet is None:
                self._done = True
                break
            if packet.pts is None or not packet.size:
                continue
            start = Fraction(packet.pts) * self._tb - self._start
            if start >= seconds:
                self._held = packet
                break
            self._mux(packet)

    def _mux(self, packet) -> None:
        offset = round(self._start / self._tb)
        if self._remux:
            packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = self._dst
            self._out.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None   # the encoder numbers samples itself from 0, which is the video's first frame
            for p in self._dst.encode(frame):
                self._out.mux(p)

    def finish(self, seconds: Fraction) -> None:
        """Copy what remains up to the end of the video, flush the encoder, close the source."""
        try:
            self.copy_until(seconds)
            if not self._remux:
                for p in self._dst.encode(None):
                    self._out.mux(p)
        finally:
            self.close()

    def close(self) -> None:
        self._in.close()


def _can_copy(format_name: str, src) -> bool:
    """Whether a ``format_name`` file takes ``src``'s packets as they are: try writing a header in memory.

    ``supported_codecs`` is not enough: the mov muxer lists Opus but refuses it when writing the header.
    """
    if src.codec_context is None:
        return False
    try:
        with av.open(io.BytesIO(), "w", format=format_name) as probe:
            probe.add_stream_from_template(src)
            probe.start_encoding()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


def _frac(value) -> Fraction:
    return Fraction(int(value.numerator), int(value.denominator))

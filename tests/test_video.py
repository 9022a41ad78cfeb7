"""Video files as streams (core/io/video.py): exact frame counts and rates, audio carried, damage reported,
nothing that looks complete left behind by errors, Ctrl-C or a full disk."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import ClipError, UserError
from core.io import video as video_mod
from core.io.frames import read_clip, write_video
from core.io.output import OutputError
from core.io.video import VideoSource, VideoTruncatedWarning, as_rate
from core.io.video_write import VIDEO_OUTPUT_EXTS, VideoSink, check_video_output
from core.metrics import psnr
from tests.helpers import small_disk

ROOT = Path(__file__).resolve().parents[1]
NTSC = Fraction(30000, 1001)


# ---------------------------------------------------------------------------------------------- helpers
def numbered_frames(n: int, h: int = 48, w: int = 64, noise: int = 0) -> np.ndarray:
    """Smooth frames whose brightness encodes their index, so order and count survive a lossy codec.

    ``noise`` adds a texture of that amplitude (frames of similar coded size, as in real footage).
    """
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        level = 30 + (180 * i) // max(n - 1, 1)
        tex = rng.integers(-noise, noise + 1, (h, w, 3)) if noise else 0
        base = np.stack([level + xx // 8, level + yy // 8, np.full_like(xx, level)], axis=-1)
        out[i] = np.clip(base + tex, 0, 255)
    return out


def frame_order(decoded: np.ndarray, source: np.ndarray) -> list[int]:
    """For each decoded frame, the index of the source frame it is closest to."""
    src = source.astype(np.float32).mean(axis=(1, 2, 3))
    return [int(np.argmin(np.abs(src - f.astype(np.float32).mean()))) for f in decoded]


def make_video(path: Path, frames: np.ndarray, rate=30, audio: str | None = None, seconds: float | None = None,
               options: dict | None = None, container_options: dict | None = None) -> Path:
    """A test input written with PyAV directly (H.264), optionally with a sine audio track of ``audio`` codec."""
    with av.open(str(path), "w", options=container_options or {}) as c:
        v = c.add_stream("libx264", rate=rate, options=options or {})
        v.height, v.width = frames.shape[1:3]
        v.pix_fmt = "yuv420p"
        a = None
        if audio:
            a = c.add_stream(audio, rate=48000)
            a.layout = "stereo"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            for p in v.encode(vf):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            total = int(48000 * (seconds if seconds is not None else len(frames) / Fraction(rate)))
            t = 0
            while t < total:
                k = min(960, total - t)
                x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(t, t + k) / 48000)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([x, x]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, t
                for p in a.encode(af):
                    c.mux(p)
                t += k
            for p in a.encode():
                c.mux(p)
    return path


def audio_info(path: Path) -> tuple[str, float] | None:
    """(codec, seconds of decoded samples) of the first audio stream, or None."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        s = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(s))
        return s.codec_context.name, samples / s.codec_context.sample_rate


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("ext", list(VIDEO_OUTPUT_EXTS))
@pytest.mark.parametrize("n", [1, 7])
def test_round_trip_keeps_every_frame_in_order(tmp_path, ext, n):
    frames = numbered_frames(n)
    path = tmp_path / f"v{ext}"
    with VideoSink(path, fps=NTSC) as sink:
        for f in frames:
            sink.write(f)
    assert names(tmp_path) == [path.name]   # no temp or lock file left
    src = VideoSource(path)
    got = np.stack(list(src))
    assert got.shape == frames.shape and src.count == n
    assert frame_order(got, frames) == list(range(n))
    assert np.mean([psnr(a, b) for a, b in zip(got, frames)]) > 30
    assert src.rate == NTSC and src.fps == pytest.approx(30000 / 1001)
    assert src.frame_names == [f"{i:08d}" for i in range(n)] and src.has_audio is False


@pytest.mark.parametrize("fps, rate", [(30000 / 1001, NTSC), (24000 / 1001, Fraction(24000, 1001)), (25, 25),
                                       (12.5, Fraction(25, 2)), (Fraction(60000, 1001), Fraction(60000, 1001))])
def test_frame_rate_is_kept_exactly(tmp_path, fps, rate):
    assert as_rate(fps) == rate
    path = write_video(numbered_frames(3), tmp_path / "v.mkv", fps=fps)
    assert VideoSource(path).rate == rate
    assert read_clip(path).fps == pytest.approx(float(rate))


def test_lossless_codec_and_odd_sizes(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (4, 17, 33, 3), dtype=np.uint8)
    exact = write_video(frames, tmp_path / "lossless.mkv", fps=10, codec="ffv1")
    np.testing.assert_array_equal(read_clip(exact).frames, frames)
    smooth = numbered_frames(5, 17, 33)   # odd sizes cannot be 4:2:0: H.264 4:4:4, the size kept exactly
    got = read_clip(write_video(smooth, tmp_path / "odd.mp4", fps=10)).frames
    assert got.shape == smooth.shape and np.mean([psnr(a, b) for a, b in zip(got, smooth)]) > 35
    with pytest.raises(UserError, match=r"mpeg4 cannot encode the odd frame size 17x33 \(HxW\)"):
        write_video(smooth, tmp_path / "odd.avi", fps=10)
    assert names(tmp_path) == ["lossless.mkv", "odd.mp4"]


def test_max_frames_and_repeated_reads(tmp_path):
    path = make_video(tmp_path / "v.mp4", numbered_frames(9))
    src = VideoSource(path, max_frames=4)
    assert src.count == 4 and src.size == (48, 64)
    first, second = np.stack(list(src)), np.stack(list(src))   # each iteration decodes from the start
    assert len(first) == 4 and np.array_equal(first, second)
    assert len(read_clip(path, max_frames=4)) == 4 and len(read_clip(path)) == 9
    with pytest.raises(UserError, match="max_frames must be at least 1"):
        VideoSource(path, max_frames=0)


def test_write_video_refuses_to_replace_without_overwrite(tmp_path):
    path = write_video(numbered_frames(2), tmp_path / "v.mp4")
    before = path.read_bytes()
    with pytest.raises(OutputError, match="already exists"):
        write_video(numbered_frames(3), path)
    assert path.read_bytes() == before
    write_video(numbered_frames(3), path, overwrite=True)
    assert len(read_clip(path)) == 3


# ---------------------------------------------------------------------------------------------- output checks
def test_check_video_output_refuses_early(tmp_path):
    with pytest.raises(UserError, match=r"\.webm is not a video type this tool writes \(accepted: \.mp4, \.mkv, "
                                        r"\.mov, \.avi\)"):
        check_video_output(tmp_path / "a.webm")
    with pytest.raises(UserError, match=r"unknown video codec 'xvid' \(accepted: h264, h265, mpeg4, mjpeg, ffv1\)"):
        check_video_output(tmp_path / "a.mp4", codec="xvid")
    with pytest.raises(UserError, match=r"quality for h264 must be an integer in 0\.\.51"):
        check_video_output(tmp_path / "a.mp4", quality=60)
    with pytest.raises(UserError, match=r"cannot write ffv1 video in \.mov"):
        check_video_output(tmp_path / "a.mov", codec="ffv1")
    with pytest.raises(UserError, match="frame rate must be a number"):
        VideoSink(tmp_path / "a.mp4", fps=0)
    assert check_video_output(tmp_path / "a.MKV", codec="h265", quality=24)[1] == "h265"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ext, codec, fine, coarse", [(".mp4", "h264", 10, 40), (".avi", "mpeg4", 1, 10),
                                                      (".mkv", "mjpeg", 1, 10)])
def test_quality_changes_the_encoding(tmp_path, ext, codec, fine, coarse):
    frames = numbered_frames(4, 64, 64, noise=8)
    small = write_video(frames, tmp_path / f"coarse{ext}", codec=codec, quality=coarse)
    large = write_video(frames, tmp_path / f"fine{ext}", codec=codec, quality=fine)
    assert large.stat().st_size > 1.5 * small.stat().st_size
    assert psnr(read_clip(large).frames[0], frames[0]) > psnr(read_clip(small).frames[0], frames[0]) + 1


# ---------------------------------------------------------------------------------------------- audio
def test_audio_is_copied_and_cut_to_the_video(tmp_path):
    src_path = make_video(tmp_path / "in.mp4", numbered_frames(30), rate=NTSC, audio="aac")
    src = VideoSource(src_path)
    assert src.has_audio
    out = tmp_path / "out.mkv"
    with VideoSink(out, fps=src.fps, audio_from=src) as sink:
        for f in src:
            sink.write(f)
    codec, seconds = audio_info(out)
    assert codec == "aac" and seconds == pytest.approx(30 / NTSC, abs=0.05)
    assert VideoSource(out).has_audio and VideoSource(out).rate == NTSC
    short = VideoSource(src_path, max_frames=10)   # a max_frames run gets the matching stretch of sound
    with VideoSink(tmp_path / "short.mp4", fps=short.fps, audio_from=short) as sink:
        for f in short:
            sink.write(f)
    assert audio_info(tmp_path / "short.mp4")[1] == pytest.approx(10 / NTSC, abs=0.05)


def test_audio_the_container_refuses_is_reencoded(tmp_path):
    src = VideoSource(make_video(tmp_path / "in.mkv", numbered_frames(25), rate=25, audio="libopus"))
    out = tmp_path / "out.mov"   # the mov muxer refuses Opus: re-encoded to AAC
    with VideoSink(out, fps=src.fps, audio_from=src) as sink:
        for f in src:
            sink.write(f)
    codec, seconds = audio_info(out)
    assert codec == "aac" and seconds == pytest.approx(1.0, abs=0.06)


def test_output_over_the_audio_source_is_refused(tmp_path):
    src = VideoSource(make_video(tmp_path / "in.mp4", numbered_frames(3), audio="aac"))
    before = src.path.read_bytes()
    with pytest.raises(OutputError, match="is an input of this command"):
        with VideoSink(src.path, fps=30, audio_from=src, overwrite=True):
            pass
    assert src.path.read_bytes() == before


# ---------------------------------------------------------------------------------------------- bad inputs
def test_not_a_video(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video at all\n" * 50)
    with pytest.raises(ClipError, match=r"cannot read video .*notes\.mp4: not a video file FFmpeg can read"):
        VideoSource(bad)
    with pytest.raises(ClipError, match=r"cannot read video .*nowhere\.mp4: no such file"):
        VideoSource(tmp_path / "nowhere.mp4")


def test_unreadable_codec(tmp_path):
    path = write_video(numbered_frames(3), tmp_path / "v.avi", codec="mjpeg")
    data = path.read_bytes()
    assert data.count(b"MJPG") >= 1
    path.write_bytes(data.replace(b"MJPG", b"QZQZ"))   # a FourCC no decoder knows
    with pytest.raises(ClipError, match=r"cannot read video .*v\.avi: its video codec cannot be decoded"):
        VideoSource(path)


def _packets(path: Path) -> list[tuple[int, int]]:
    with av.open(str(path)) as c:
        return [(p.pos, p.size) for p in c.demux(video=0) if p.size]


def test_corrupt_frame_in_the_middle_names_it(tmp_path):
    # no B-frames: decode order is display order, so packet 12 is frame 12
    path = make_video(tmp_path / "v.mp4", numbered_frames(24), options={"bf": "0"})
    pos, size = _packets(path)[12]
    data = bytearray(path.read_bytes())
    data[pos + 4:pos + size] = bytes((b * 7 + 13) & 255 for b in data[pos + 4:pos + size])
    path.write_bytes(bytes(data))
    src = VideoSource(path)
    got = []
    with pytest.raises(ClipError, match=r"cannot read video .*v\.mp4: frame 12 is corrupt"):
        for f in src:
            got.append(f)
    assert len(got) == 12   # the frames before it were delivered, a writer fed by them is aborted


@pytest.mark.parametrize("ext, options", [(".mp4", {"movflags": "faststart"}), (".mkv", {})])
def test_truncated_video_keeps_the_frames_before_the_cut_and_warns(tmp_path, ext, options):
    frames = numbered_frames(24, noise=20)
    path = make_video(tmp_path / f"v{ext}", frames, container_options=options)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    src = VideoSource(path)
    with pytest.warns(VideoTruncatedWarning, match=r"ended after (\d+) of the 24 frames its header announces"):
        got = np.stack(list(src))
    assert 5 < len(got) < 24 and src.count == len(got)
    assert frame_order(got, frames) == list(range(len(got)))   # the frames kept are the first ones, in order


def test_truncated_mp4_without_its_index_is_unreadable(tmp_path):
    path = make_video(tmp_path / "v.mp4", numbered_frames(24))   # index (moov) at the end: cut off with the tail
    path.write_bytes(path.read_bytes()[:-2000])
    with pytest.raises(ClipError, match=r"cannot read video .*v\.mp4: not a video file FFmpeg can read"):
        VideoSource(path)


def test_complete_video_does_not_warn(tmp_path):
    path = make_video(tmp_path / "v.mkv", numbered_frames(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(list(VideoSource(path))) == 10


# ---------------------------------------------------------------------------------------------- failures
def test_error_while_writing_leaves_nothing_and_keeps_the_old_file(tmp_path):
    path = write_video(numbered_frames(2), tmp_path / "v.mp4")
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with VideoSink(path, fps=25, overwrite=True) as sink:
            sink.write(numbered_frames(1)[0])
            raise RuntimeError("boom")
    assert path.read_bytes() == before and names(tmp_path) == ["v.mp4"]
    with pytest.raises(OutputError, match="no frames were given"):
        with VideoSink(tmp_path / "empty.mp4", fps=25):
            pass
    with pytest.raises(UserError, match=r"frame 1 is 16x32 but the video w\.mp4 is 48x64 \(HxW\)"):
        with VideoSink(tmp_path / "w.mp4", fps=25) as sink:
            sink.write(numbered_frames(1)[0])
            sink.write(np.zeros((16, 32, 3), np.uint8))
    assert names(tmp_path) == ["v.mp4"]


class _FullDiskContainer:
    """Wraps an output container: muxing fails with ENOSPC after ``ok`` packets, as FFmpeg reports it."""

    def __init__(self, real, ok: int):
        self._real, self._ok = real, ok

    def mux(self, packet):
        if self._ok <= 0:
            raise av.error.OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._ok -= 1
        return self._real.mux(packet)

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_full_disk_injected(tmp_path, monkeypatch):
    real_open = av.open
    monkeypatch.setattr(video_mod.av, "open", lambda *a, **k: _FullDiskContainer(real_open(*a, **k), 3)
                        if len(a) > 1 and a[1] == "w" and not hasattr(a[0], "read") else real_open(*a, **k))
    with pytest.raises(OutputError, match=r"cannot write .*v\.mp4: the disk is full.*; nothing was replaced"):
        write_video(numbered_frames(40), tmp_path / "v.mp4")
    assert names(tmp_path) == []


def test_full_disk_on_a_tiny_file_system(tmp_path):
    with small_disk(tmp_path, "256k") as mount:        # where it cannot mount, the injected ENOSPC test covers it
        noise = np.random.default_rng(0).integers(0, 256, (120, 96, 128, 3), dtype=np.uint8)
        with pytest.raises(OutputError, match=r"cannot write .*v\.mkv: the disk is full.*; nothing was replaced"):
            write_video(noise, mount / "v.mkv")
        assert names(mount) == []


_SLOW_WRITER = textwrap.dedent("""
    import sys, time, numpy as np
    from core.io.video_write import VideoSink
    with VideoSink(sys.argv[1], fps=25, overwrite=True) as sink:
        for i in range(100000):
            sink.write(np.full((48, 64, 3), i % 256, np.uint8))
            if i == 5:
                print("writing", flush=True)
            time.sleep(0.01)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupt_leaves_nothing_that_looks_complete(tmp_path, sig):
    target = write_video(numbered_frames(2), tmp_path / "v.mp4")   # the user's previous file
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert target.read_bytes() == before
    left = [n for n in names(tmp_path) if n != "v.mp4"]
    if sig == signal.SIGINT:
        assert left == []   # Ctrl-C: the temp file is removed
    else:   # SIGKILL cannot be caught: only hidden partials, never a name that looks finished
        assert all(n.startswith(".v.mp4.") for n in left)
        write_video(numbered_frames(3), target, overwrite=True)   # rerunning works and sweeps them
        assert names(tmp_path) == ["v.mp4"] and len(read_clip(target)) == 3


# ---------------------------------------------------------------------------------------------- through `sr`
def demo_video(path: Path, seconds: int, step: int = 4) -> Path:
    """``seconds`` of 30 fps video with a sound track, from the demo clip's LR frames ping-ponged.

    ``step`` subsamples the 64x112 (HxW) frames (to 16x28 by default) so a minute of video runs through ``sr`` in a
    test's time; the video path (decode, stream, encode, audio) is the same at any size.
    """
    lr = read_clip(ROOT / "resources" / "demo" / "BIx4").frames[:, ::step, ::step]
    cycle = np.concatenate([lr, lr[-2:0:-1]])
    frames = np.ascontiguousarray(cycle[np.arange(30 * seconds) % len(cycle)])
    return make_video(path, frames, rate=30, audio="aac")


def run_peak_rss(args: list[str]) -> tuple[int, str, int]:
    """Run a command; return (exit status, stderr, its own peak RSS in KiB)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")   # frames this small gain nothing from threads, lose on busy cores
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss


@pytest.mark.slow   # ~3 min on an idle 2-core CPU: run with -m slow
def test_one_minute_video_with_sound_through_sr_in_flat_memory(tmp_path):
    from core.io.checkpoint import save_model
    from tests.helpers import tiny_model

    model = save_model(tiny_model(), tmp_path / "tiny.pt")
    peak = {}
    for seconds in (10, 60):
        src, out = demo_video(tmp_path / f"in{seconds}.mp4", seconds), tmp_path / f"out{seconds}.mp4"
        rc, err, peak[seconds] = run_peak_rss([sys.executable, str(ROOT / "main.py"), "sr", str(model), str(src),
                                               str(out), "--device", "cpu", "--json"])
        assert rc == 0, err
        result = VideoSource(out)
        assert sum(1 for _ in result) == 30 * seconds and result.size == (64, 112)
        assert result.rate == 30 and result.has_audio
        codec, audio_seconds = audio_info(out)
        assert codec == "aac" and audio_seconds == pytest.approx(seconds, abs=0.1)
    print(f"sr peak RSS: {peak[10] / 1024:.0f} MiB for 10 s, {peak[60] / 1024:.0f} MiB for 60 s")   # shown with -s
    # whole-clip inference would hold every frame's state and output: flat means 6x the clip, < 1.2x the memory
    assert peak[60] < 1.2 * peak[10], f"peak RSS {peak[10] / 1024:.0f} MiB at 10 s, {peak[60] / 1024:.0f} MiB at 60 s"

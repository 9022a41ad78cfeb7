"""Video backends: encode and decode speed, file size and fidelity of OpenCV and PyAV on the same frames.

    python bench/bench_video.py [--frames 300] [--repeats 3]

The clip is the demo clip's GT frames (256x448 HxW, the 4x output size of the demo's LR frames), ping-ponged to
``--frames``. Prints CPU ms/frame (all threads, best of the repeats), file size and PSNR of the decoded frames
against the source on the Y channel (as BasicSR): RGB PSNR on this colourful clip is ~28 dB for every 4:2:0
codec, the chroma subsampling alone costs that.
This is the measurement behind the backend choice written in ``core/io/video.py``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.io.frames import read_clip  # noqa: E402
from core.io.video import VideoSource  # noqa: E402
from core.io.video_write import VideoSink  # noqa: E402
from core.metrics import psnr  # noqa: E402


def ping_pong(frames: np.ndarray, n: int) -> np.ndarray:
    cycle = np.concatenate([frames, frames[-2:0:-1]])
    return cycle[np.arange(n) % len(cycle)]


def encode_opencv(frames: np.ndarray, path: Path, fps: float) -> None:
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(np.ascontiguousarray(f[:, :, ::-1]))
    writer.release()


def decode_opencv(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(out)


def encode_pyav(frames: np.ndarray, path: Path, fps: float, codec: str) -> None:
    with VideoSink(path, fps=fps, codec=codec, overwrite=True) as sink:
        for f in frames:
            sink.write(f)


def decode_pyav(path: Path) -> np.ndarray:
    return np.stack(list(VideoSource(path)))


def best(fn, repeats: int) -> float:
    """Least CPU time (all threads of this process) over the repeats: wall time means little on a shared CPU."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    frames = ping_pong(read_clip(ROOT / "resources" / "demo" / "GT").frames, args.frames)
    n = len(frames)
    rows = [f"{'writer':<28}{'encode CPU ms/f':>16}{'size KiB':>10}{'decoder':>9}{'decode CPU ms/f':>16}"
            f"{'Y-PSNR dB':>11}"]
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("OpenCV mp4v (.mp4)", Path(tmp) / "cv.mp4", lambda p: encode_opencv(frames, p, 30.0)),
                 ("PyAV h264 CRF 18 (.mp4)", Path(tmp) / "h264.mp4", lambda p: encode_pyav(frames, p, 30.0, "h264")),
                 ("PyAV mpeg4 q2 (.avi)", Path(tmp) / "mpeg4.avi", lambda p: encode_pyav(frames, p, 30.0, "mpeg4"))]
        for label, path, enc in cases:
            t_enc = best(lambda: enc(path), args.repeats)
            size = path.stat().st_size / 1024
            for dec_name, dec in (("OpenCV", decode_opencv), ("PyAV", decode_pyav)):
                t_dec = best(lambda: dec(path), args.repeats)
                got = dec(path)
                quality = (np.mean([psnr(a, b, test_y_channel=True) for a, b in zip(got, frames)])
                           if len(got) == n else float("nan"))
                rows.append(f"{label:<28}{1000 * t_enc / n:>16.2f}{size:>10.0f}{dec_name:>9}"
                            f"{1000 * t_dec / n:>16.2f}{quality:>11.2f}")
    print(f"{n} frames of {frames.shape[1]}x{frames.shape[2]} (HxW), best of {args.repeats}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

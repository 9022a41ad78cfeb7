"""Render the licence-clean demo clip: ``GT/0000.png..`` (256x448) and its MATLAB-bicubic ``BIx4/`` (64x112).

Run once from anywhere: ``python resources/demo/make_demo_clip.py``. Everything is drawn procedurally from a
fixed seed (no photographs, no third-party assets), so the clip can ship under the project's licence.

What it shows, so super-resolution and optical flow have something to work on: a camera slowly panning and
zooming over a street-like scene (sky gradient, a brick and window facade, a checkered pavement, noise-based
foliage, signs with text from large to tiny, thin wires, circles), plus a ball and a van moving on their own.
Frames are drawn at 4x the output size and reduced with ``cv2.INTER_AREA`` for natural anti-aliasing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.data.degrade import bi_degrade  # noqa: E402
from core.io.output import write_bytes  # noqa: E402

OUT_H, OUT_W = 256, 448
SUPER = 4  # render oversampling
FRAMES = 24
SCENE_H, SCENE_W = 1400, 2600  # scene canvas, in render pixels
SEED = 20240611


def _value_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid upsampled with bicubic interpolation."""
    grid = rng.random((cells + 3, int(cells * w / h) + 3)).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def _fractal_noise(rng: np.random.Generator, h: int, w: int, base: int, octaves: int) -> np.ndarray:
    acc, amp, total = np.zeros((h, w), np.float32), 1.0, 0.0
    for o in range(octaves):
        acc += amp * _value_noise(rng, h, w, base * 2**o)
        total += amp
        amp *= 0.5
    return acc / total


def _text(
    img: np.ndarray, s: str, org: tuple[int, int], scale: float, colour, thick: int, font=cv2.FONT_HERSHEY_SIMPLEX
) -> None:
    cv2.putText(img, s, org, font, scale, colour, thick, cv2.LINE_AA)


def render_scene(rng: np.random.Generator) -> np.ndarray:
    """The static world, RGB uint8, SCENE_H x SCENE_W."""
    h, w = SCENE_H, SCENE_W
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # sky: vertical gradient with soft clouds
    t = yy / h
    sky = np.stack([120 + 80 * t, 170 + 50 * t, 235 - 20 * t], axis=-1)
    clouds = _fractal_noise(rng, h, w, 3, 3)
    sky += (np.clip(clouds - 0.5, 0, 1) * 2 * 60)[..., None]
    img = np.clip(sky, 0, 255).astype(np.uint8)

    horizon = 760
    # distant hills: smooth colour band with a wavy top
    ridge = (520 + 80 * np.sin(xx[0] / 260.0) + 40 * np.sin(xx[0] / 97.0 + 1.0)).astype(np.int32)
    hill = np.stack([70 + 40 * t, 120 + 30 * t, 90 + 10 * t], axis=-1).astype(np.uint8)
    img = np.where((yy >= ridge[None, :])[..., None], hill, img)

    # facade with bricks (fine horizontal stripes + staggered joints) and a window grid
    fx0, fx1, fy0 = 1150, 2150, 250
    face = img[fy0:horizon, fx0:fx1]
    fh, fw = face.shape[:2]
    by, bx = np.mgrid[0:fh, 0:fw]
    brick_row = by // 14
    joint = (by % 14 < 2) | (((bx + (brick_row % 2) * 18) % 36) < 2)
    tone = 150 + 40 * _value_noise(rng, fh, fw, 20)
    face[:] = np.stack([tone, tone * 0.55, tone * 0.42], -1).astype(np.uint8)
    face[joint] = (205, 200, 190)
    for wy in range(40, fh - 90, 120):
        for wx in range(40, fw - 80, 110):
            cv2.rectangle(face, (wx, wy), (wx + 70, wy + 85), (240, 240, 235), -1)
            cv2.rectangle(face, (wx + 6, wy + 6), (wx + 64, wy + 79), (40, 60, 90), -1)
            cv2.line(face, (wx + 35, wy + 6), (wx + 35, wy + 79), (240, 240, 235), 3)
            cv2.line(face, (wx + 6, wy + 42), (wx + 64, wy + 42), (240, 240, 235), 3)
    # a sign with text of several sizes on the facade
    cv2.rectangle(face, (260, 140), (760, 330), (25, 45, 110), -1)
    cv2.rectangle(face, (260, 140), (760, 330), (230, 200, 60), 6)
    _text(face, "VIDEO SR", (300, 225), 2.6, (250, 245, 230), 7, cv2.FONT_HERSHEY_DUPLEX)
    _text(face, "structured sparsity learning", (300, 275), 1.1, (230, 200, 60), 3)
    _text(face, "open 07:00 - 22:00 every day, 4x zoom", (300, 310), 0.62, (220, 220, 220), 2)

    # pavement: checker tiles in perspective-free rows, then a kerb
    pv = img[horizon:, :]
    py, px = np.mgrid[0:pv.shape[0], 0:w]
    checker = ((py // 40) + (px // 40)) % 2
    grit = _fractal_noise(rng, pv.shape[0], w, 40, 2)
    base = np.where(checker[..., None] == 1, (185, 180, 170), (120, 118, 115)).astype(np.float32)
    pv[:] = np.clip(base * (0.92 + 0.16 * grit[..., None]), 0, 255).astype(np.uint8)
    cv2.rectangle(img, (0, horizon - 6), (w, horizon + 10), (210, 210, 200), -1)

    # foliage: thresholded fractal noise, leafy greens, to the left of the facade
    lx0, lx1, ly0 = 80, 1100, 300
    region = img[ly0:horizon + 40, lx0:lx1]
    rh, rw = region.shape[:2]
    shape = _fractal_noise(rng, rh, rw, 4, 2)
    canopy = np.hypot((np.mgrid[0:rh, 0:rw][1] - rw / 2) / (rw / 2), (np.mgrid[0:rh, 0:rw][0] - rh * 0.55) / (rh * 0.6))
    leaf = _fractal_noise(rng, rh, rw, 90, 3)
    mask = (canopy + 0.5 * (shape - 0.5) < 0.9) & (leaf > 0.42)
    green = np.stack([30 + 60 * leaf, 90 + 120 * leaf, 30 + 40 * shape], -1)
    region[mask] = np.clip(green[mask], 0, 255).astype(np.uint8)
    # trunks
    for tx in (330, 700):
        cv2.rectangle(img, (lx0 + tx, horizon - 180), (lx0 + tx + 34, horizon + 20), (80, 55, 35), -1)

    # thin wires and poles, circles (a clock, rings), a striped awning
    for k, (x0, y0, x1, y1) in enumerate([(0, 230, 2600, 300), (0, 260, 2600, 340), (0, 200, 2600, 215)]):
        cv2.line(img, (x0, y0), (x1, y1), (30, 30, 30), 2 + (k == 0), cv2.LINE_AA)
    for px0 in (1050, 2300):
        cv2.rectangle(img, (px0, 180), (px0 + 14, horizon), (70, 70, 75), -1)
    cv2.circle(img, (2400, 420), 95, (245, 245, 240), -1, cv2.LINE_AA)
    cv2.circle(img, (2400, 420), 95, (30, 30, 30), 5, cv2.LINE_AA)
    for hour in range(12):
        a = hour / 12 * 2 * np.pi
        p0 = (int(2400 + 78 * np.sin(a)), int(420 - 78 * np.cos(a)))
        p1 = (int(2400 + 88 * np.sin(a)), int(420 - 88 * np.cos(a)))
        cv2.line(img, p0, p1, (30, 30, 30), 3, cv2.LINE_AA)
    cv2.line(img, (2400, 420), (2440, 370), (30, 30, 30), 6, cv2.LINE_AA)
    cv2.line(img, (2400, 420), (2400, 345), (30, 30, 30), 3, cv2.LINE_AA)
    for r in range(10, 120, 12):
        cv2.circle(img, (420, 1000), r, (200, 60, 60) if r % 24 else (240, 240, 240), 3, cv2.LINE_AA)
    aw_y = fy0 + 380
    for i in range(0, fx1 - fx0, 30):
        cv2.rectangle(img, (fx0 + i, aw_y), (fx0 + i + 15, aw_y + 60), (200, 40, 40), -1)
        cv2.rectangle(img, (fx0 + i + 15, aw_y), (fx0 + i + 30, aw_y + 60), (245, 240, 230), -1)
    # pavement lettering and a bench with slats
    _text(img, "SLOW", (1480, 1080), 3.2, (245, 240, 90), 12, cv2.FONT_HERSHEY_DUPLEX)
    _text(img, "BasicVSR demo clip - procedurally generated, Apache-2.0", (560, 1120), 0.9, (250, 250, 250), 2)
    for s in range(6):
        cv2.rectangle(img, (1850, 790 + s * 12), (2150, 796 + s * 12), (110, 70, 40), -1)
    return img


def _draw_objects(frame: np.ndarray, i: int, cam: np.ndarray) -> None:
    """Independently moving things, drawn in scene coordinates mapped through the camera matrix."""

    def to_frame(x: float, y: float) -> tuple[int, int]:
        v = cam @ np.array([x, y, 1.0])
        return int(round(v[0] * 16)), int(round(v[1] * 16))  # 4 bits of sub-pixel precision

    zoom = float(np.hypot(cam[0, 0], cam[1, 0]))
    # a van driving left along the road, with text and wheels
    vx, vy = 2000 - 34 * i, 880
    def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        return np.array([to_frame(x0, y0), to_frame(x1, y0), to_frame(x1, y1), to_frame(x0, y1)])

    def label(s: str, x: float, y: float, scale: float, colour, thick: float) -> None:
        ox, oy = to_frame(x, y)
        _text(frame, s, (ox // 16, oy // 16), scale * zoom, colour, max(1, int(thick * zoom)))

    cv2.fillPoly(frame, [rect(vx, vy, vx + 420, vy + 170)], (40, 110, 190), cv2.LINE_AA, shift=4)
    cv2.fillPoly(frame, [rect(vx + 20, vy + 20, vx + 120, vy + 80)], (200, 230, 250), cv2.LINE_AA, shift=4)
    label("SSL-VSR", vx + 140, vy + 75, 1.6, (255, 255, 255), 4)
    label("pruned & fast 0123 456", vx + 140, vy + 120, 0.7, (250, 230, 120), 2)
    for wx in (vx + 80, vx + 330):
        c = to_frame(wx, vy + 175)
        cv2.circle(frame, c, int(45 * zoom * 16), (20, 20, 20), -1, cv2.LINE_AA, shift=4)
        cv2.circle(frame, c, int(22 * zoom * 16), (180, 180, 185), -1, cv2.LINE_AA, shift=4)
    # a striped ball bouncing to the right
    bx = 900 + 40 * i
    by = 1040 - abs(np.sin(i / FRAMES * 2.2 * np.pi)) * 240
    c = to_frame(bx, by)
    r = int(60 * zoom * 16)
    cv2.circle(frame, c, r, (230, 60, 40), -1, cv2.LINE_AA, shift=4)
    cv2.ellipse(frame, c, (r, r // 3), 25 * i, 0, 360, (250, 240, 60), int(10 * zoom), cv2.LINE_AA, shift=4)


def render_frames() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    scene = render_scene(rng)
    rh, rw = OUT_H * SUPER, OUT_W * SUPER
    frames = []
    for i in range(FRAMES):
        t = i / (FRAMES - 1)
        zoom = 1.0 + 0.12 * t  # slow push-in
        cx = 1150 + 420 * t  # pan right
        cy = 690 - 30 * t
        # scene -> frame: scale by zoom about (cx, cy), put (cx, cy) at the frame centre
        cam = np.array([[zoom, 0.0, rw / 2 - zoom * cx], [0.0, zoom, rh / 2 - zoom * cy]])
        big = cv2.warpAffine(scene, cam, (rw, rh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        _draw_objects(big, i, cam)
        frames.append(cv2.resize(big, (OUT_W, OUT_H), interpolation=cv2.INTER_AREA))
    return np.stack(frames)


def main() -> None:
    here = Path(__file__).resolve().parent
    gt = render_frames()
    lr = bi_degrade(gt, 4)
    for folder, frames in (("GT", gt), ("BIx4", lr)):
        for i, rgb in enumerate(frames):
            # level 9: the clip ships in the repository, so spend time for size
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            assert ok
            write_bytes(here / folder / f"{i:04d}.png", buf.tobytes(), overwrite=True)   # the project's own clip
    print(f"wrote {len(gt)} GT frames {gt.shape[1]}x{gt.shape[2]} and BIx4 {lr.shape[1]}x{lr.shape[2]} (HxW) to {here}")


if __name__ == "__main__":
    main()

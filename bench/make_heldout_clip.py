"""Make a held-out evaluation clip (``GT/`` + ``BIx4/``) from any video or frame folder, the way the recovery
bench's clips were made, so anyone can score a pruned network on video it never saw.

    python bench/make_heldout_clip.py SOURCE --out .clips/NAME [--skip 10] [--frames 20] [--downscale 2]
                                     [--max-size 540x720] [--overwrite]

Frames ``skip .. skip+frames-1`` of SOURCE are reduced by ``--downscale`` (area averaging: a compressed video's
blocking and noise shrink below what the LR frames can show, so GT is closer to a clean capture), centre-cropped
to at most ``--max-size`` (HxW, rounded down to multiples of 4), and written as ``GT/0000.png..``; ``BIx4/`` is
GT reduced by the project's MATLAB-compatible bicubic (``core.data.degrade.bi_degrade``), the degradation BasicVSR
was trained for. Nothing is overwritten without ``--overwrite``.

The clips behind the README's tables: ``bedroom`` is ``notebooks/videos/bedroom/00000..00019.jpg`` of
github:facebookresearch/sam2 with ``--skip 0 --downscale 1``; ``dog``, ``juggle`` and ``cups`` are that
repository's ``demo/data/gallery/01_dog.mp4``, ``05_default_juggle.mp4`` and ``02_cups.mp4`` (1280x720 H.264)
with the defaults.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from common import ROOT  # noqa: F401  (puts the project on sys.path)
from core.data.degrade import bi_degrade
from core.errors import UserError
from core.io.frames import write_frames
from core.io.source import open_source


def heldout_frames(source: str, skip: int, frames: int, downscale: int, max_hw: tuple[int, int]) -> np.ndarray:
    """uint8 RGB (T, H, W, 3) GT frames: ``frames`` frames after ``skip``, area-reduced, centre-cropped."""
    clip = list(open_source(source, max_frames=skip + frames))[skip:]
    if len(clip) < frames:
        raise SystemExit(f"{source}: only {len(clip)} frame(s) after skipping {skip}, {frames} wanted")
    if downscale > 1:
        clip = [cv2.resize(f, (f.shape[1] // downscale, f.shape[0] // downscale), interpolation=cv2.INTER_AREA)
                for f in clip]
    h, w = clip[0].shape[:2]
    ch, cw = min(h, max_hw[0]) // 4 * 4, min(w, max_hw[1]) // 4 * 4
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.stack([f[y:y + ch, x:x + cw] for f in clip])


def write_clip(out: Path, gt: np.ndarray, overwrite: bool, source: str) -> None:
    """GT/ and BIx4/, each built whole in a temporary folder and swapped in by the output rule: an ``--overwrite``
    never leaves an earlier run's frames among the new ones (fewer frames, another size)."""
    for folder, frames in (("GT", gt), ("BIx4", bi_degrade(gt, 4))):
        write_frames(frames, out / folder, overwrite=overwrite, inputs=[source])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a video file or a folder of frames")
    parser.add_argument("--out", type=Path, required=True, help="clip folder to write (GT/ and BIx4/)")
    parser.add_argument("--skip", type=int, default=10, help="frames skipped first (a video's opening frames)")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--downscale", type=int, default=2, help="area reduction before cropping (1: none)")
    parser.add_argument("--max-size", default="540x720", help="largest GT size, HxW")
    parser.add_argument("--overwrite", action="store_true", help="replace frames an earlier run wrote")
    args = parser.parse_args()
    max_hw = tuple(int(v) for v in args.max_size.lower().split("x"))
    try:
        gt = heldout_frames(args.source, args.skip, args.frames, args.downscale, max_hw)
        write_clip(args.out, gt, args.overwrite, args.source)
    except UserError as e:  # a missing source, an existing frame: one line, not a traceback
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {len(gt)} GT frames {gt.shape[1]}x{gt.shape[2]} and BIx4 {gt.shape[1] // 4}x{gt.shape[2] // 4} "
          f"(HxW) to {args.out}")


if __name__ == "__main__":
    main()

"""One image file as a frame: its header bounded before anything is decoded, the pixels converted to uint8 RGB
with a note per conversion, and a frame encoded back into an image file's bytes.

Conversions that change pixel data (grey, 16-bit, alpha, float) are allowed but never silent: ``read_frame``
returns a note per conversion (``frames.read_clip`` turns them into one ``FrameConversionWarning`` per kind per
clip).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from core.errors import ClipError, UserError
from core.io.image_header import ImageHeader, read_image_header
from core.io.limits import CONVERT_BYTES, MAX_FRAME_BYTES, check_frame_size

# A damaged image is reported in one ClipError line; OpenCV's own "[ERROR] ... readHeader" line would be a second.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

# Conversion notes (one wording per kind, so read_clip can group them).
NOTE_GREY = "grey image expanded to RGB"
NOTE_16BIT = "16-bit image reduced to 8-bit (round(x / 257))"
NOTE_FLOAT = "floating-point image clipped to [0, 1] and scaled to 8-bit"
NOTE_ALPHA = "alpha channel dropped (colour kept as stored, not composited)"


class FrameConversionWarning(UserWarning):
    """Frames were converted to 8-bit RGB on reading; the pixels are not exactly what is on disk."""


def probe_frame(path: str | os.PathLike) -> ImageHeader:
    """The declared size of one image file, refused past the frame-size limits (``core.io.limits``) in one line.

    Why: frames are untrusted, and a small file can declare a huge image (389 KB for 20000 x 20000, 1.2 GB once
    decoded); the header is read without decoding anything, and every reader asks here first.
    """
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"cannot read image {path}: not a readable image file")
    size = path.stat().st_size
    if size > MAX_FRAME_BYTES:
        raise ClipError(f"cannot read image {path}: {size:,} bytes is more than any frame within the size limits "
                        f"decodes to ({MAX_FRAME_BYTES:,})")
    header = read_image_header(path)
    check_frame_size(header.width, header.height, f"cannot read image {path}", header.bytes_per_pixel, size)
    return header


def read_frame(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Read one image as uint8 HxWx3 RGB, plus a note for each conversion it needed (empty if none).

    The size its header declares is bounded first (``probe_frame``), and the decoded image must have it.
    Grey is replicated to 3 channels, 16-bit is mapped by round(x / 257), float is clipped to [0, 1] and
    scaled, and alpha is dropped (the colour channels are kept as stored, not composited on any background).
    """
    path = Path(path)
    header = probe_frame(path)
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    del data                        # the file's bytes are not held beside the conversion (limits.decode_peak)
    if img is None:
        raise ClipError(f"cannot read image {path}: not a readable image file")
    if img.shape[:2] != (header.height, header.width):
        raise ClipError(f"cannot read image {path}: it decodes to {img.shape[0]}x{img.shape[1]} but its header "
                        f"declares {header.height}x{header.width} (HxW)")
    if img.dtype not in _TO_UINT8:
        raise ClipError(f"cannot read image {path}: unsupported pixel type {img.dtype}")
    colour, notes = _colour_view(img, path)
    notes = ([NOTE_16BIT] if img.dtype == np.uint16 else [NOTE_FLOAT] if img.dtype != np.uint8 else []) + notes
    return _to_rgb8(colour), notes


def _colour_view(img: np.ndarray, path: Path) -> tuple[np.ndarray, list[str]]:
    """A view (no copy) of ``img``'s colour channels in RGB order, H x W x 3 or H x W x 1 for grey, and the notes
    on what was dropped or replicated."""
    if img.ndim == 2:
        return img[:, :, None], [NOTE_GREY]
    channels = img.shape[2]
    if channels == 1:
        return img, [NOTE_GREY]
    if channels == 2:               # grey + alpha
        return img[:, :, :1], [NOTE_GREY, NOTE_ALPHA]
    if channels == 4:               # BGRA: alpha dropped, the colour channels kept as stored
        return img[:, :, 2::-1], [NOTE_ALPHA]
    if channels == 3:
        return img[:, :, ::-1], []
    raise ClipError(f"cannot read image {path}: {channels} channels")


def _from_uint16(band: np.ndarray) -> np.ndarray:
    return (band.astype(np.uint32) * 2 + 257) // 514       # round(x / 257) in integers


def _from_float(band: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(np.nan_to_num(band), 0.0, 1.0) * 255.0 + 0.5)


_TO_UINT8 = {np.dtype(np.uint8): None, np.dtype(np.uint16): _from_uint16, np.dtype(np.float32): _from_float,
             np.dtype(np.float64): _from_float}


def _to_rgb8(colour: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3 from an RGB or grey view of any supported type, converted a band of rows at a time so its
    temporaries stay within ``CONVERT_BYTES`` (whole-image 16-bit temporaries peaked at 3.4 GB)."""
    h, w = colour.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    convert = _TO_UINT8[colour.dtype]
    rows = max(1, CONVERT_BYTES // (2 * 8 * w * colour.shape[2]))   # two float64-sized temporaries per band
    for y in range(0, h, rows):
        band = colour[y:y + rows]
        out[y:y + rows] = band if convert is None else convert(band)
    return out


def encode_frame(img: np.ndarray, ext: str = "png") -> bytes:
    """One uint8 RGB frame encoded as an image file's bytes (``ext`` one of IMAGE_EXTS)."""
    ext = ext.lower().lstrip(".")
    if f".{ext}" not in IMAGE_EXTS:
        raise UserError(f"cannot write frames as .{ext} (accepted: {', '.join(IMAGE_EXTS)})")
    ok, buf = cv2.imencode(f".{ext}", np.ascontiguousarray(img[:, :, ::-1]))
    if not ok:
        raise ClipError(f"cannot encode a {img.shape[0]}x{img.shape[1]} (HxW) frame as .{ext}")
    return buf.tobytes()

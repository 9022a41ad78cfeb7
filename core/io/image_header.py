"""The size an image file will decode to, read from its header alone (no pixel is decoded).

Why: OpenCV decodes first and has no header-only call, and a 389 KB PNG can declare 20000 x 20000 pixels
(1.2 GB once decoded). Frames are untrusted input, so every reader asks this module for the declared size and
refuses past ``core.io.limits.check_frame_size`` before the decoder runs. PIL is not a dependency; the formats
are simple enough to read here: PNG (IHDR), JPEG (SOF), BMP, TIFF (first IFD, classic and BigTIFF) and WebP.

The kind is decided by the signature, not the file name, exactly as ``cv2.imdecode`` does; content in any other
format (PPM, OpenEXR, JPEG 2000 ... which OpenCV would decode too) is refused, because its size is not bounded
here and ``IMAGE_EXTS`` promises none of them.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import ClipError

__all__ = ["ImageHeader", "read_image_header"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels OpenCV decodes (a palette expands to 3 or 4; 4 is the bound)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}
# JPEG start-of-frame markers (the baseline, progressive, lossless and arithmetic variants; not DHT/JPG/DAC)
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}       # TEM and RSTn carry no length
_MAX_JPEG_SEGMENTS = 10_000                          # a real header has tens; bounds a file of empty segments
_MAX_JPEG_SKIP = 1 << 20                             # extraneous bytes tolerated before one marker
# TIFF field types whose values are whole numbers: type -> (struct code, size)
_TIFF_INTS = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}
_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_SAMPLES = 256, 257, 258, 277
_MAX_TIFF_SAMPLES = 64                               # values read for BitsPerSample
_MAX_TIFF_ENTRIES = 4096                             # fields in one IFD (a real one has tens)


@dataclass(frozen=True)
class ImageHeader:
    """What a file declares: its format, size and the bytes per pixel its decoded buffer needs (an upper bound)."""

    kind: str
    width: int
    height: int
    bytes_per_pixel: int


class _Damaged(Exception):
    """The header ends early or contradicts itself (reported by ``read_image_header`` in one line)."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Damaged("the header ends early")
    return data


def _png(f: BinaryIO) -> ImageHeader:
    f.seek(8)
    length, kind = struct.unpack(">I4s", _read(f, 8))
    if kind != b"IHDR" or length != 13:
        raise _Damaged("its first chunk is not IHDR")
    width, height, depth, colour = struct.unpack(">IIBB", _read(f, 10))
    if colour not in _PNG_CHANNELS:
        raise _Damaged(f"unknown PNG colour type {colour}")
    return ImageHeader("PNG", width, height, _PNG_CHANNELS[colour] * (2 if depth == 16 else 1))


def _next_marker(f: BinaryIO) -> None:
    """Move to the next 0xFF, skipping extraneous bytes between segments as libjpeg does (a bounded amount)."""
    skipped = 0
    while skipped <= _MAX_JPEG_SKIP:
        chunk = f.read(4096)
        if not chunk:
            raise _Damaged("the header ends early")
        at = chunk.find(b"\xff")
        if at >= 0:
            f.seek(at - len(chunk) + 1, 1)          # just past the 0xFF
            return
        skipped += len(chunk)
    raise _Damaged("no marker where the next segment should start")


def _jpeg(f: BinaryIO) -> ImageHeader:
    """Walk the marker segments (skipping each by its length) up to the first start-of-frame."""
    f.seek(2)
    for _ in range(_MAX_JPEG_SEGMENTS):
        _next_marker(f)
        marker = _read(f, 1)[0]
        while marker == 0xFF:                       # fill bytes before a marker
            marker = _read(f, 1)[0]
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):                  # end of image, or scan data before any frame header
            raise _Damaged("no frame header (SOF) before the image data")
        (length,) = struct.unpack(">H", _read(f, 2))
        if length < 2:
            raise _Damaged("a segment length is below 2")
        if marker in _JPEG_SOF:
            precision, height, width, components = struct.unpack(">BHHB", _read(f, 6))
            return ImageHeader("JPEG", width, height, max(components, 1) * (2 if precision > 8 else 1))
        f.seek(length - 2, 1)
    raise _Damaged(f"more than {_MAX_JPEG_SEGMENTS:,} segments before the frame header")


def _bmp(f: BinaryIO) -> ImageHeader:
    f.seek(14)
    (size,) = struct.unpack("<I", _read(f, 4))
    if size == 12:                                  # BITMAPCOREHEADER (OS/2 1.x): 16-bit sizes
        width, height, _, bits = struct.unpack("<HHHH", _read(f, 8))
    elif size >= 16:                                # BITMAPINFOHEADER, its later versions, OS/2 2.x
        width, height, _, bits = struct.unpack("<iiHH", _read(f, 12))
    else:
        raise _Damaged(f"unknown BMP header size {size}")
    return ImageHeader("BMP", width, abs(height), 4 if bits == 32 else 3)     # negative height: top-down rows


def _tiff(f: BinaryIO, order: str) -> ImageHeader:
    """The first image (IFD) of a classic or BigTIFF file: the one ``cv2.imdecode`` reads."""
    (version,) = struct.unpack(order + "H", _read(f, 2))
    if version == 42:
        offset, count_code, inline = order + "I", order + "H", 4
    elif version == 43:
        offset, count_code, inline = order + "Q", order + "Q", 8
        _read(f, 4)                                 # offset size (8) and a reserved word
    else:
        raise _Damaged(f"unknown TIFF version {version}")
    osize = struct.calcsize(offset)
    entry_size = 4 + osize + inline                 # tag, type, value count, value or its offset
    (ifd,) = struct.unpack(offset, _read(f, osize))
    f.seek(ifd)
    (count,) = struct.unpack(count_code, _read(f, struct.calcsize(count_code)))
    if count > _MAX_TIFF_ENTRIES:
        raise _Damaged(f"{count:,} fields in the first image")
    entries = _read(f, count * entry_size)
    fields: dict[int, tuple[int, ...]] = {}
    for i in range(count):
        entry = entries[i * entry_size:(i + 1) * entry_size]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag not in (_TIFF_WIDTH, _TIFF_LENGTH, _TIFF_BITS, _TIFF_SAMPLES) or kind not in _TIFF_INTS:
            continue
        code, size = _TIFF_INTS[kind]
        n = min(struct.unpack(offset, entry[4:4 + osize])[0], _MAX_TIFF_SAMPLES)
        raw = entry[4 + osize:]
        if n * size > inline:                       # values stored elsewhere: ``raw`` holds their offset
            here = f.tell()
            f.seek(struct.unpack(offset, raw)[0])
            raw = _read(f, n * size)
            f.seek(here)
        fields[tag] = struct.unpack(order + code * n, raw[:n * size])
    if not fields.get(_TIFF_WIDTH) or not fields.get(_TIFF_LENGTH):
        raise _Damaged("the first image has no width or length")
    samples = (fields.get(_TIFF_SAMPLES) or (1,))[0]
    bits = max(fields.get(_TIFF_BITS) or (1,))
    return ImageHeader("TIFF", fields[_TIFF_WIDTH][0], fields[_TIFF_LENGTH][0], max(samples, 1) * max(-(-bits // 8), 1))


def _webp(f: BinaryIO) -> ImageHeader:
    f.seek(12)
    chunk, _ = struct.unpack("<4sI", _read(f, 8))
    if chunk == b"VP8 ":                             # lossy: frame tag, start code, 14-bit sizes
        data = _read(f, 10)
        if data[3:6] != b"\x9d\x01\x2a":
            raise _Damaged("a VP8 frame without its start code")
        width, height = struct.unpack("<HH", data[6:10])
        return ImageHeader("WebP", width & 0x3FFF, height & 0x3FFF, 4)
    if chunk == b"VP8L":                            # lossless: signature byte, then 14-bit sizes minus one
        data = _read(f, 5)
        if data[0] != 0x2F:
            raise _Damaged("a VP8L bitstream without its signature")
        bits = int.from_bytes(data[1:5], "little")
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4)
    if chunk == b"VP8X":                            # extended: the canvas, 24-bit sizes minus one
        data = _read(f, 10)
        return ImageHeader("WebP", int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1, 4)
    raise _Damaged(f"unknown WebP chunk {chunk!r}")


def _parse(f: BinaryIO) -> ImageHeader | None:
    """The header of the format the signature names, or None when no format read here has that signature."""
    head = f.read(16)
    if head.startswith(_PNG_SIGNATURE):
        return _png(f)
    if head.startswith(b"\xff\xd8"):
        return _jpeg(f)
    if head.startswith(b"BM"):
        return _bmp(f)
    if head[:2] in (b"II", b"MM") and len(head) >= 4:
        f.seek(2)
        return _tiff(f, "<" if head[:2] == b"II" else ">")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(f)
    return None


def read_image_header(path: str | Path) -> ImageHeader:
    """Kind, width, height and decoded bytes per pixel of the image file ``path``, from its header.

    One-line ``ClipError`` for a file that is unreadable, in no format read here, or whose header is damaged.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            header = _parse(f)
    except OSError as e:
        raise ClipError(f"cannot read image {path}: {e.strerror or e}") from None
    except (_Damaged, struct.error, ValueError) as e:
        reason = str(e) if isinstance(e, _Damaged) else "the header is damaged"
        raise ClipError(f"cannot read image {path}: not a readable image file ({reason})") from None
    if header is None:
        raise ClipError(f"cannot read image {path}: not a readable image file (not PNG, JPEG, BMP, TIFF or WebP "
                        f"data)")
    return header

"""Bounds on untrusted input (checkpoints; frame sizes at the end), checked before anything it describes is
allocated.

Why: a checkpoint is a few bytes of description for possibly gigabytes of memory. A 2 KB file can hold a
stride-0 tensor that claims a 4096 x 4099 x 3 x 3 shape, and a compressed zip record can inflate a few MB
into gigabytes. Each check here reads only headers, shapes and names (never tensor data, except for the
finiteness scan of tensors whose shapes already match a bounded network), so a refusal costs almost no memory.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Mapping

import torch

from ..errors import CheckpointError, ClipError
from ..models.basicvsr import BasicVSR
from ..models.spec import ArchSpec
from .torch_legacy import check_legacy_claims

# The published BasicVSR holds ~330 tensors and 6.3 M values (25 MB); the limits leave wide room for other
# BasicVSR-family layouts while keeping the worst refused file well under a gigabyte of memory.
MAX_TENSORS = 4096
MAX_ELEMENTS = 1 << 28            # all tensors together: 268 M values, 1 GiB as float32
MAX_FILE_BYTES = 8 * MAX_ELEMENTS + (64 << 20)    # float64 at the element limit, plus the pickle
MAX_INFLATION = 64 << 20          # bytes a compressed zip may expand beyond its own size (torch.save stores)
MAX_RECORDS = 2 * MAX_TENSORS + 64


def check_file(path: Path) -> None:
    """Refuse a file that is no checkpoint at all, or whose size or zip directory promises more data than a
    checkpoint holds (read from the first bytes and the zip directory only)."""
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file, not a PyTorch checkpoint")
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"{path}: {size / 2**30:.1f} GiB is larger than any BasicVSR checkpoint "
                              f"(limit {MAX_FILE_BYTES / 2**30:.1f} GiB)")
    with path.open("rb") as f:
        head = f.read(4)
    if not zipfile.is_zipfile(path):
        if head.startswith(b"PK"):
            raise CheckpointError(f"{path}: damaged checkpoint (a zip archive whose end is missing: an "
                                  f"interrupted download or copy?)")
        if not head.startswith(b"\x80"):     # the legacy (pre-1.6) format is pickle data (protocol 2+)
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor pickle data)")
        check_legacy_claims(path)     # torch allocates each storage at the size the pickle claims, then reads
        return
    try:
        with zipfile.ZipFile(path) as zf:
            records = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (damaged zip archive: {e})") from None
    if not any(r.filename.endswith("/data.pkl") for r in records):
        raise CheckpointError(f"{path}: a zip archive but not a PyTorch checkpoint (no data.pkl record)")
    if not any(r.filename.endswith("/version") for r in records):     # torch.save has written it since 1.6
        raise CheckpointError(f"{path}: a zip archive but not a PyTorch checkpoint (no version record)")
    if len(records) > MAX_RECORDS:
        raise CheckpointError(f"{path}: zip archive holds {len(records)} records, more than a checkpoint "
                              f"has (limit {MAX_RECORDS})")
    unpacked = sum(r.file_size for r in records)
    if unpacked > MAX_FILE_BYTES or unpacked > size + MAX_INFLATION:
        raise CheckpointError(f"{path}: zip archive would unpack {size:,} bytes into {unpacked:,} "
                              f"(a compression bomb; torch.save writes records uncompressed)")


def check_tensor_budget(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse too many tensors, too many values in all, or a tensor claiming more values than its stored data
    (stride-0 expansion: a few bytes on disk, any size once copied into a network)."""
    if len(state) > MAX_TENSORS:
        raise CheckpointError(f"{path}: holds {len(state):,} tensors, more than a BasicVSR has "
                              f"(limit {MAX_TENSORS:,})")
    total = 0
    for key, tensor in state.items():
        if tensor.layout != torch.strided:      # sparse/mkldnn: no storage to bound, and no network holds one
            raise CheckpointError(f"{path}: tensor '{key}' is stored as {str(tensor.layout).split('.')[-1]}, not "
                                  f"as the dense tensor a BasicVSR weight is")
        if tensor.device.type != "cpu":         # loaded with map_location="cpu": only "meta" stays elsewhere
            raise CheckpointError(f"{path}: tensor '{key}' holds no values (a {tensor.device.type} tensor, "
                                  f"saved without its data)")
        n = math.prod(tensor.shape)
        stored = tensor.untyped_storage().nbytes() // max(tensor.element_size(), 1)
        if n > stored:
            raise CheckpointError(f"{path}: tensor '{key}' claims {n:,} values of shape {tuple(tensor.shape)} but "
                                  f"the file holds {stored:,} (a stride-0 expansion, which no trained network has)")
        total += n
        if total > MAX_ELEMENTS:
            raise CheckpointError(f"{path}: tensors hold more than {MAX_ELEMENTS:,} values in all (at "
                                  f"'{key}', shape {tuple(tensor.shape)}); too large for a BasicVSR")


def expected_shapes(spec: ArchSpec, path: Path) -> dict[str, tuple[int, ...]]:
    """Every tensor ``BasicVSR(spec)`` holds, with its shape, found on the meta device (no memory),
    refusing a network whose parameters alone pass MAX_ELEMENTS."""
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in BasicVSR(spec).state_dict().items()}
    total = sum(math.prod(s) for s in shapes.values())
    if total > MAX_ELEMENTS:
        raise CheckpointError(f"{path}: describes a network of {total:,} values, more than the limit of "
                              f"{MAX_ELEMENTS:,}")
    return shapes


def first_nonfinite(state: Mapping[str, torch.Tensor], order: list[str]) -> str | None:
    """Name of the first tensor (in ``order``) holding NaN or ±Inf, or None when all values are finite."""
    for key in order:
        tensor = state[key]
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return key
    return None


# -- frames: the one owner of the frame-size bounds (image headers, video streams) --------------------------------
# Why here: every reader of frames (PNG/JPEG/... folders, calibration clips, GT folders, videos) must refuse the
# same sizes, from the header, before a decoder allocates anything. 8K UHD (7680 x 4320, 33 M pixels) passes;
# its x4 output is already 530 M pixels per frame.
MAX_SIDE = 16384                  # pixels per side of an input frame
MAX_PIXELS = 1 << 26              # 67 M pixels (8192 x 8192): 192 MiB as 8-bit RGB
MAX_FRAME_BYTES = 8 * MAX_PIXELS  # the peak of reading one frame (``decode_peak``): 512 MiB
CONVERT_BYTES = 16 << 20          # scratch of the conversion to 8-bit RGB, done a band of rows at a time
DECODER_HOLDS = 1.5         # the decoded image as the decoder leaves it resident: 16-bit RGB(A) PNGs measured
                            # 1.27-1.45x their buffer since exec (VmHWM), beyond the 8-bit frame and the scratch


def decode_peak(width: int, height: int, bytes_per_pixel: int = 3, file_bytes: int = 0) -> int:
    """Bytes reading one frame holds at its peak (``core.io.image_file.read_frame``): the file's bytes beside the
    decoder's buffer while it decodes, then that buffer beside the 8-bit RGB frame made from it and the
    conversion's scratch (a 16-bit frame converted whole took 6 times its own size in temporaries: 3.4 GB)."""
    decoded = width * height * bytes_per_pixel
    return max(file_bytes + decoded, decoded * DECODER_HOLDS + width * height * 3 + CONVERT_BYTES)


def check_frame_size(width: int, height: int, what: str, bytes_per_pixel: int = 3, file_bytes: int = 0) -> None:
    """Refuse, in one line naming ``what``, a frame whose declared size is outside the bounds above.

    ``bytes_per_pixel``: what the decoder's buffer needs per pixel (channels x bytes per sample), when the
    header says; 8-bit RGB otherwise. ``file_bytes``: the encoded frame's size, held while it decodes.
    """
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ClipError(f"{what}: frame size {height}x{width} (HxW) is outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise ClipError(f"{what}: frame size {height}x{width} (HxW) is {width * height:,} pixels, more than the "
                        f"limit of {MAX_PIXELS:,} (8192x8192)")
    peak = decode_peak(width, height, bytes_per_pixel, file_bytes)
    if peak > MAX_FRAME_BYTES:
        raise ClipError(f"{what}: a {height}x{width} (HxW) frame of {bytes_per_pixel} bytes per pixel needs "
                        f"{peak / 2**20:,.0f} MiB to read (decoded and converted to 8-bit RGB), more than the limit "
                        f"of {MAX_FRAME_BYTES / 2**20:,.0f} MiB")

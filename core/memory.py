"""Memory: process-wide allocator tuning for CPU inference and training, and whether the network fits at a size.

Every conv in BasicVSR writes a fresh multi-megabyte tensor (14.7 MB per trunk conv and 236 MB per head
conv at 180x320). glibc serves such sizes with ``mmap`` and returns them on ``free``, so each one is
page-faulted and zeroed again on first touch: about a fifth of CPU inference time, and more of a pruned
network's (its convs are shorter, the faults are not). Keeping freed memory in the heap makes the next
tensor of that size reuse warm pages instead (bench/bench_prune.py ``--no-retain`` shows the difference).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Free memory kept at the heap's top before glibc gives it back to the system.
_TRIM_BYTES = 1 << 30
# Set to 0 to keep glibc's default (lower peak memory, slower CPU inference); read at start-up, before the
# first large allocation, which is why it is an environment variable and not a command-line option.
OPT_OUT_VARIABLE = "SSL_VSR_RETAIN_MEMORY"
_applied = False


def retain_freed_memory() -> bool:
    """Serve every allocation from the heap and keep up to 1 GiB of freed memory for reuse.

    Returns whether the tuning is in effect (glibc on Linux only, and not when ``SSL_VSR_RETAIN_MEMORY=0``;
    elsewhere the call does nothing).
    The price is memory: freed blocks stay with the process and fragment, so peak RSS rises (1.6 vs 1.2 GiB
    for 10 frames at 180x320 in bench_infer.py) and is kept after a run.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT_VARIABLE, "1").strip() == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
    return _applied


# -- will the network fit? ------------------------------------------------------------------------------------------
# The one owner of "can this machine run the network at this LR size": every command that runs it at a size the
# user gives (--size) or on the user's frames asks here before any long work, so a size that cannot fit is one line
# and exit 2 instead of a traceback after gigabytes (8000x8000 died at 4.3 GB with "can't allocate memory").
# Measured (VmHWM, official REDS4 network, 3 frames through core.infer.super_resolve, CPU) above the loaded
# network: glibc's defaults 97 MB at 64x64 and 347 MB at 128x192 (12.2 KB per LR pixel between them); with
# ``retain_freed_memory`` (the CLI's setting) 552 MB at 128x192 and 1345 MB at 256x320 (13.8 KB per pixel between
# them). So: 56 tensors of num_feat (64) float32 channels at LR size alive at once (the head's 256-channel convs
# at 2x and the x4 output dominate), 14.3 KB per pixel, plus what the allocator keeps beside them.
FEATURE_TENSORS_ALIVE = 56
OVERHEAD_BYTES = 256 << 20


def network_bytes(size: tuple[int, int], num_feat: int) -> int:
    """Bytes running the network holds at its peak at LR size ``size`` (h, w), beyond its weights."""
    h, w = size
    return FEATURE_TENSORS_ALIVE * num_feat * h * w * 4 + OVERHEAD_BYTES


def available_memory(device: object = None) -> int | None:
    """Bytes the network may use now: a CUDA device's free memory, or the system's available memory (Linux
    ``MemAvailable``, ``os.sysconf`` elsewhere); None when unknown (nothing is refused then). Tests replace it to
    see a refusal without a huge allocation."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_network_memory(size: tuple[int, int], num_feat: int, what: str, device: object = None) -> None:
    """Refuse, in one line naming ``what`` and the size, running a ``num_feat``-channel network at LR ``size``
    when it needs more memory than ``device`` (default: this machine's RAM) has available."""
    from .errors import UserError

    need, have = network_bytes(size, num_feat), available_memory(device)
    if have is not None and need > have:
        where = "this GPU has" if getattr(device, "type", str(device)) == "cuda" else "this machine has"
        raise UserError(f"{what}: running the network at {size[0]}x{size[1]} (HxW, LR) needs about "
                        f"{need / 2**30:,.1f} GiB of memory, but {where} {have / 2**30:,.1f} GiB available; "
                        f"use smaller frames")

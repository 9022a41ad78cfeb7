"""Process-wide allocator tuning for CPU inference and training.

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

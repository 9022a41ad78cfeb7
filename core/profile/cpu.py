"""The CPU features conv speed depends on, printed with every timing: machines differ (AVX2 alone, or AVX-512
with VNNI and BF16), and int8 gains three times per conv with VNNI but far less without."""
from __future__ import annotations

from pathlib import Path

SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile")


def cpu_flags() -> list[str]:
    """The ``SPEED_FLAGS`` this CPU has, as /proc/cpuinfo lists them (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return [f for f in SPEED_FLAGS if f in flags]

"""Human-readable numbers for labels and tooltips (one place, so every panel says '4.85 M' the same way)."""
from __future__ import annotations

import math


def count(n: float) -> str:
    """4851011 → '4.85 M'; 1.2e10 → '12.0 G'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}" if abs(n) / scale < 100 else f"{n / scale:.0f} {unit}"
    return f"{n:.0f}"


def seconds(s: float | None) -> str:
    """ETA-style duration: '42 s', '3 min 05 s', '1 h 02 min'; '–' when unknown."""
    if s is None or not math.isfinite(s):
        return "–"
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f} s" if s >= 10 else f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def ms(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def db(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.2f} dB"

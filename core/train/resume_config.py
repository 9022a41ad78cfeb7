"""A resume continues the run its saved states were saved by, so it refuses a config that changes how that run
trains: the states would not honour it (a changed ``finetune.lr`` was written into ``run_config.yaml`` while the
restored optimizer went on with the old one). Only where and how often the run reports may change."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .config import TrainConfig
from .config_load import load_config
from .runfolder import RUN_CONFIG

# Settings that change where the run computes or how often it logs and saves, never what it computes.
MAY_CHANGE = frozenset({"runtime.device", "runtime.log_every", "runtime.checkpoint_every", "data.num_workers"})


def check_resume_config(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse, before any write, a resume whose config differs from the run's ``run_config.yaml`` in a setting
    that decides the result (a run refused before it wrote that file has nothing saved to contradict)."""
    path = run_dir / RUN_CONFIG
    if not path.is_file():
        return
    saved, asked = _flat(load_config(path).to_dict()), _flat(cfg.to_dict())
    for key in {**asked, **saved}:
        if key not in MAY_CHANGE and saved.get(key) != asked.get(key):
            raise ConfigError(f"cannot resume with {key} = {asked.get(key)!r}: the run in {run_dir} was started with "
                              f"{saved.get(key)!r} and its saved states go on with that; resume without changing "
                              f"it, or start a new run in another folder")


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"finetune": {"lr": 1e-4}}`` as ``{"finetune.lr": 1e-4}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat

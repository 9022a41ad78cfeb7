"""resources/configs/quick.yaml: SSL on the official weights, from files the project ships, on a short schedule."""
from __future__ import annotations

from pathlib import Path

from core.train.config import PATH_KEYS, load_config
from core.train.stages import sir_iterations

from .helpers import official

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "resources" / "configs" / "quick.yaml"


def test_quick_config_is_ssl_on_the_official_weights():
    cfg = load_config(QUICK)
    assert cfg.stages == ["sir", "finetune"]
    assert cfg.model.weights == "official:REDS4"
    assert cfg.sir.ratio == 0.5 and cfg.finetune.tf_weight > 0 and cfg.finetune.teacher is None


def test_quick_config_reads_only_files_of_the_project():
    cfg = load_config(QUICK)
    used = []
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if value is not None and not value.startswith("official:"):
            used.append(Path(value))
    assert used, "the quick start trains on the demo clip"
    for path in used:
        assert path.is_relative_to(ROOT / "resources"), path
        assert path.is_dir() and any(path.iterdir()), path


def test_quick_config_schedule_stays_short():
    cfg = load_config(QUICK)
    # a few minutes on a 2-core CPU: about 1-1.5 s per iteration at these patch and clip sizes (README)
    assert sir_iterations(cfg.sir) + cfg.finetune.iterations <= 200
    assert cfg.data.num_workers == 0 and cfg.runtime.device == "cpu"


def test_official_weights_name_resolves():
    from core.io.weights import weights_file

    assert weights_file(load_config(QUICK).model.weights, "model.weights") == official("REDS4")

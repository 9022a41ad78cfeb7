"""resources/configs/quick.yaml: the official weights cut, reconstructed and distilled on LR frames the project
ships, with no GT read for training, on a short schedule."""
from __future__ import annotations

import json
from pathlib import Path

from core.ssl import DEFAULT_CRITERION
from core.train.config import PATH_KEYS
from core.train.config_load import load_config

from .helpers import official

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "resources" / "configs" / "quick.yaml"


def test_quick_config_cuts_reconstructs_and_distils_the_official_weights():
    cfg = load_config(QUICK)
    assert cfg.stages == ["prune", "finetune"] and cfg.prune.reconstruct
    assert cfg.model.weights == "official:REDS4"
    # the hidden stream kept whole at 2.2x fewer MACs: it recovered better than cutting the stream (README)
    assert cfg.sir.keep_stream and cfg.sir.ratio == 0.24 and cfg.sir.criterion == DEFAULT_CRITERION
    assert cfg.data.kind == "lr-only" and cfg.finetune.distill.sr_weight > 0 and cfg.finetune.teacher is None


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
    # about 5 CPU-minutes on 2 cores: ~2 for the reconstruction, ~1.7 CPU-s per iteration after it (README)
    assert cfg.finetune.iterations <= 120 and cfg.data.patch_size <= 32 and cfg.data.clip_length <= 5
    assert cfg.data.num_workers == 0 and cfg.runtime.device == "cpu"


def test_official_weights_name_resolves():
    from core.io.weights import weights_file

    assert weights_file(load_config(QUICK).model.weights, "model.weights") == official("REDS4")


def test_a_plan_file_replaces_the_kept_stream(tmp_path):
    """`train quick.yaml --plan PLAN.json` trains to that plan whole: quick.yaml's keep_stream must not lock stream
    layers a latency target's widths cut (their floor would refuse the widths)."""
    from core.train.cli import plan_file_overrides

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"settings": {"ratio": 0.5, "criterion": "contribution", "align": 16,
                                             "widths": {"forward.0.in": 16, "forward.0.mid": 32}}}))
    cfg = load_config(QUICK, plan_file_overrides(plan))
    assert not cfg.sir.keep_stream and cfg.sir.widths == {"forward.0.in": 16, "forward.0.mid": 32}
    assert cfg.sir.lock == []

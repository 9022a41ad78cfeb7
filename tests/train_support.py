"""Helpers shared by the training tests: a tiny config on the demo clip and tiny model files."""
from __future__ import annotations

from pathlib import Path

import torch

from core.io.checkpoint import save_model
from core.io.demo import demo_clip_dir
from core.models.basicvsr import BasicVSR
from core.models.spec import dense_spec
from core.train.config import TrainConfig
from core.train.config_load import config_from_dict
from core.train.runmarker import RUN_MARKER


def tiny_model_file(path: Path, variant: str = "basicvsr-uni", num_feat: int = 8, num_block: int = 1,
                    seed: int = 0) -> Path:
    """A randomly initialised small dense network saved as a model file."""
    torch.manual_seed(seed)
    return save_model(BasicVSR(dense_spec(variant, num_feat, num_block)), path)


def tiny_config(weights: Path | None, **sections) -> TrainConfig:
    """SIR (10 iterations) + finetune (6) on 3-frame 16-pixel patches of the demo clip; ``sections`` override."""
    demo = demo_clip_dir()
    raw = {
        "stages": ["sir", "finetune"],
        "model": {"weights": None if weights is None else str(weights), "variant": "basicvsr-uni",
                  "num_feat": 8, "num_block": 1},
        "data": {"kind": "folder", "root": str(demo / "GT"), "lr_root": str(demo / "BIx4"), "clip_length": 3,
                 "patch_size": 16, "batch_size": 1, "num_workers": 0},
        "pretrain": {"iterations": 6, "spynet_lr": 0.0},
        "sir": {"delta": 0.05, "t1": 1, "tau": 0.2, "stabilize_iters": 6, "gamma_lr": 0.05},
        "finetune": {"iterations": 6, "lr": 1e-3, "spynet_lr": 0.0, "tf_weight": 1.0},
        "runtime": {"device": "cpu", "log_every": 2, "checkpoint_every": 4, "seed": 0},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            raw.setdefault(section, {}).update(values)
        else:
            raw[section] = values
    return config_from_dict(raw)


def unfinish(run: Path) -> Path:
    """A finished run's folder made to look like the run was killed before its end: its marker without the
    ``finished`` line (what it records as written stays)."""
    marker = run / RUN_MARKER
    marker.write_text(marker.read_text().replace("finished\n", ""))
    return run

"""Short training runs for studies and benches, through the project's own engine (core.train).

A study on a CPU affords tens to hundreds of iterations, not the paper's 300k; what matters is that every
compared network gets the same budget, the same data and the same engine. These helpers build the configs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..ssl.criteria import DEFAULT_CRITERION
from ..train.config import TrainConfig
from ..train.config_load import config_from_dict
from ..train.stages import sir_iterations


@dataclass(frozen=True)
class Budget:
    """Iterations and data of one short run (the numbers a results table has to state)."""

    train_gt: str                       # folder of GT frames (one clip) or of clip folders
    train_lr: str | None = None         # LR frames laid out like train_gt; None: BI-degrade on the fly
    sir_iterations: int = 40            # SIR: λ grows over the first half, stabilizes over the second
    finetune_iterations: int = 60
    patch_size: int = 32                # LR patch side
    clip_length: int = 3
    batch_size: int = 1
    lr: float = 5e-4                    # Adam, cosine to ~0 over the run (finetune and from-scratch alike)
    gamma_lr: float = 2e-2              # SIR's scale factors move ~one step size per iteration under Adam
    tau: float = 0.5                    # λ ceiling of SIR
    tf_weight: float = 1.0
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _base(b: Budget, weights: str, stages: list[str]) -> dict[str, Any]:
    return {
        "stages": stages,
        "model": {"weights": weights},
        "data": {"kind": "folder", "root": b.train_gt, "lr_root": b.train_lr, "lr": "disk" if b.train_lr else "BI",
                 "clip_length": b.clip_length, "patch_size": b.patch_size, "batch_size": b.batch_size,
                 "num_workers": 0},
        "runtime": {"device": "cpu", "log_every": 10, "checkpoint_every": 100000, "seed": b.seed},
    }


def _sir_section(b: Budget, ratio: float, align: int, criterion: str = DEFAULT_CRITERION) -> dict[str, Any]:
    grow = max(1, b.sir_iterations // 2)
    return {"ratio": ratio, "criterion": criterion, "align": align, "delta": b.tau / grow, "t1": 1, "tau": b.tau,
            "stabilize_iters": max(0, b.sir_iterations - grow), "gamma_lr": b.gamma_lr}


def _finetune_section(b: Budget, iterations: int, tf_weight: float, teacher: str | None) -> dict[str, Any]:
    return {"iterations": iterations, "lr": b.lr, "spynet_lr": 0.0, "eta_min": 0.0, "tf_weight": tf_weight,
            "teacher": teacher}


def ssl_config(b: Budget, weights: str, ratio: float, align: int = 1, tf: bool = True) -> TrainConfig:
    """SIR at ``ratio`` → physical pruning → finetune (with TF against the network that entered SIR)."""
    raw = _base(b, weights, ["sir", "finetune"])
    raw["sir"] = _sir_section(b, ratio, align)
    raw["finetune"] = _finetune_section(b, b.finetune_iterations, b.tf_weight if tf else 0.0, None)
    return config_from_dict(raw)


def sir_only_config(b: Budget, weights: str, ratio: float, align: int = 1,
                    criterion: str = DEFAULT_CRITERION) -> TrainConfig:
    raw = _base(b, weights, ["sir"])
    raw["sir"] = _sir_section(b, ratio, align, criterion)
    return config_from_dict(raw)


def finetune_config(b: Budget, weights: str, iterations: int, tf_weight: float = 0.0,
                    teacher: str | None = None) -> TrainConfig:
    """Finetune a (pruned) model file for ``iterations``; TF needs the unpruned ``teacher`` file."""
    raw = _base(b, weights, ["finetune"])
    raw["finetune"] = _finetune_section(b, iterations, tf_weight, teacher)
    return config_from_dict(raw)


def scratch_config(b: Budget, weights: str, iterations: int) -> TrainConfig:
    """Train a freshly initialised network (saved in ``weights``) with the finetuning recipe, SpyNet frozen."""
    raw = _base(b, weights, ["pretrain"])
    raw["pretrain"] = {"iterations": iterations, "lr": b.lr, "spynet_lr": 0.0, "eta_min": 0.0}
    return config_from_dict(raw)


def total_iterations(b: Budget) -> int:
    """SIR (exactly as the engine counts it) + finetuning: the budget every compared method gets."""
    cfg = sir_only_config(b, "official:REDS4", 0.5)
    return sir_iterations(cfg.sir) + b.finetune_iterations


def as_path(p: str | Path | None) -> str | None:
    return None if p is None else str(Path(p).resolve())

"""The training configuration's schema: one typed section per part of a run, with the paper's values as defaults.

Read from YAML by ``config_load`` and judged by ``config_check``; this module holds what the sections are and what
their values mean (the plan a ``sir`` section describes, the GT weight a null stands for).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..data.calib import CALIB_FRAMES
from ..ssl.criteria import DEFAULT_CRITERION
from ..ssl.plan import RECOMMENDED_ALIGN
from ..models.spec import ArchSpec
from ..ssl.settings import PlanSettings
from ..ssl.units import stream_layer_names

STAGES = ("pretrain", "sir", "prune", "finetune")
DATA_KINDS = ("reds", "vimeo", "folder", "lr-only")
LR_SOURCES = ("disk", "BI", "BD")
AMP_MODES = ("auto", "off", "bf16", "fp16")
REDS4 = ("000", "011", "015", "020")


@dataclass
class ModelConfig:
    """The network entering the first stage."""

    weights: str | None = "official:REDS4"   # a checkpoint path, "official:NAME", or null to start from scratch
    variant: str = "basicvsr"                # from scratch only: basicvsr | basicvsr-uni
    num_feat: int = 64
    num_block: int = 30


@dataclass
class DataConfig:
    """Training clips and how patches are cut from them."""

    kind: str = "reds"                       # reds | vimeo | folder | lr-only (LR clips, no GT: distillation)
    root: str | None = None                  # REDS root, Vimeo-90K root, or a folder of clip folders / videos
    lr_root: str | None = None               # LR clips beside ``root`` (folder kind; REDS/Vimeo find their own);
                                             # lr-only: a video file, a folder of frames, or a folder of clips
    lr: str = "disk"                         # disk | BI | BD (make LR from GT on the fly)
    clip_length: int = 15
    patch_size: int = 64                     # LR patch side (the GT patch is 4x)
    batch_size: int = 8                      # clips per iteration over all processes (1 per GPU on 8 GPUs)
    flip: bool = True
    rotate: bool = True
    reverse: bool = False                    # random temporal reversal
    cache: str | None = None                 # HDF5 cache file to build once and read from
    num_workers: int = 4
    lr_cache_mb: int = 4096                  # lr-only: MiB of decoded video frames kept in memory (per process);
                                             # frame folders are read from disk as needed and do not count


@dataclass
class DistillConfig:
    """Distillation from the frozen dense network (the teacher) in a stage; off while sr_weight = hidden_weight = 0.

    The student is trained on the teacher's outputs for the same LR patch, computed on the fly: its SR frames
    (Charbonnier) and its hidden states at every recurrent step of each branch (mean squared error, TF
    generalized from the final states to all steps). GT is used when the data has it, teacher targets when not.
    """

    sr_weight: float = 0.0                   # Charbonnier to the teacher's SR frames
    hidden_weight: float = 0.0               # MSE to the teacher's hidden states, every step of both branches
    gt_weight: float | None = None           # Charbonnier to GT; null: 1 when the data has GT, 0 for lr-only


@dataclass
class ValConfig:
    """The validation split, scored with the project's BasicSR-exact metrics."""

    root: str | None = None                  # null: held-out clips of the training set
    lr_root: str | None = None
    clips: list[str] | None = None           # null: REDS4 for REDS, sep_testlist for Vimeo, none for folders
    max_clips: int = 0                       # 0: all
    max_frames: int = 0                      # 0: whole clips
    crop: int = 0                            # LR centre crop side in pixels, 0: whole frames
    y_channel: bool | None = None            # null: RGB for REDS (as published), Y otherwise
    every: int = 5000                        # iterations between validations (finetune and pretrain)


@dataclass
class _SupervisedConfig:
    """The optimizer and schedule of a stage trained against targets (pretrain, finetune)."""

    iterations: int = 300000
    lr: float = 2e-4
    spynet_lr: float = 2.5e-5
    spynet_frozen_iters: int = 0
    eta_min: float = 1e-7
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    charbonnier_eps: float = 1e-6


@dataclass
class PretrainConfig(_SupervisedConfig):
    """Optional dense training before SIR (BasicSR's recipe)."""

    spynet_frozen_iters: int = 5000


@dataclass
class SIRConfig:
    """Sparsity-inducing regularization on the scale factors of the units the plan (these first keys) prunes.

    The plan keys are the Prune step's plan: SIR regularizes exactly the units it prunes and the final cut
    removes exactly those, so a locked layer stays whole and a capped one within its cap.
    """

    ratio: float = 0.5
    criterion: str = DEFAULT_CRITERION       # ranks the units (see core.ssl.criteria)
    min_keep: int = 1
    align: int = RECOMMENDED_ALIGN   # kept widths rounded for speed; 1 = the paper's exact cut
    lock: list[str] = field(default_factory=list)            # layers kept whole, e.g. [fusion, forward.0.mid]
    keep_stream: bool = False                # lock every layer that cuts the hidden stream (prune --keep-stream)
    max_ratio: dict[str, float] = field(default_factory=dict)  # per-layer cap on the pruning ratio
    widths: dict[str, int] = field(default_factory=dict)     # units kept per layer (a latency target's plan)
    delta: float = 1e-4
    t1: int = 5
    tau: float = 0.1
    stabilize_iters: int = 1000
    lr: float = 2e-4
    gamma_lr: float | None = None            # null: same as lr (paper); tiny CPU runs raise it
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    charbonnier_eps: float = 1e-6
    distill: DistillConfig = field(default_factory=DistillConfig)   # teacher: the network that entered SIR


@dataclass
class PruneConfig:
    """The ``prune`` stage: the cut ``prune`` makes (no SIR), by the plan in ``sir``'s plan keys (ratio,
    criterion, align, locks, caps, widths: one plan whichever stage cuts), reconstructed on LR frames so the
    stage after it starts from a recovered network rather than a raw cut."""

    reconstruct: bool = True                 # false: the raw cut (a starting point for training only)
    calib: str | None = None                 # LR clip (frame folder or video) measured and reconstructed on;
                                             # null: the first LR clip of the training data (data.kind lr-only)
    calib_frames: int = CALIB_FRAMES         # frames fitted on (the held-out ones after them judge the fit)


@dataclass
class FinetuneConfig(_SupervisedConfig):
    """Finetuning of the pruned network with Charbonnier + λ_TF · Temporal Finetuning."""

    tf_weight: float = 1.0                   # λ_TF; 0 disables Temporal Finetuning
    teacher: str | None = None               # unpruned teacher for TF and distill; null: the network that entered SIR
    distill: DistillConfig = field(default_factory=DistillConfig)


@dataclass
class RuntimeConfig:
    """Where and how the computation runs."""

    device: str = "auto"                     # auto | cpu | cuda | cuda:N
    amp: str = "auto"                        # auto (bf16 on CUDA when supported) | off | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 1000


@dataclass
class TrainConfig:
    stages: list[str] = field(default_factory=lambda: ["sir", "finetune"])
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    sir: SIRConfig = field(default_factory=SIRConfig)
    prune: PruneConfig = field(default_factory=PruneConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Keys holding file system paths (resolved against the YAML file's folder).
PATH_KEYS = ("model.weights", "data.root", "data.lr_root", "data.cache", "val.root", "val.lr_root",
             "prune.calib", "finetune.teacher")


def plan_settings(sir: SIRConfig, spec: ArchSpec) -> PlanSettings:
    """The plan a config's ``sir`` section describes for a network of ``spec`` (``keep_stream`` becomes locks on
    its stream layers, as ``prune --keep-stream`` does; layer names are checked against the network later)."""
    locks = (*sir.lock, *(stream_layer_names(spec) if sir.keep_stream else ()))
    return PlanSettings(sir.ratio, sir.criterion, sir.min_keep, sir.align, locks,
                        tuple(sir.max_ratio.items()), tuple(sir.widths.items()))


def plan_overrides(settings: PlanSettings) -> dict[str, Any]:
    """``sir.*`` values that carry ``settings`` into a config (the Train step copies the Prune step's plan). The
    settings' locks already hold a kept stream's layers, so ``sir.keep_stream`` is cleared: a config's own
    ``keep_stream`` must not add locks the copied plan does not have."""
    data = settings.to_json()
    keys = ("ratio", "criterion", "min_keep", "align", "lock", "max_ratio", "widths")
    return {**{f"sir.{k}": data[k] for k in keys}, "sir.keep_stream": False}


def default_config() -> TrainConfig:
    """The paper's settings (REDS, ratio 0.5); a dataset root still has to be given."""
    return TrainConfig()


def gt_weight(distill: DistillConfig, has_gt: bool) -> float:
    """The weight of Charbonnier to GT: ``distill.gt_weight``, or when null 1 with GT and 0 without (lr-only)."""
    return (1.0 if has_gt else 0.0) if distill.gt_weight is None else distill.gt_weight

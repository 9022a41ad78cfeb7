"""The training configuration's checks after types: ranges, choices, and the rules that tie sections together.

A value out of range, a stage order the pipeline cannot run or a combination that cannot train raises a
``ConfigError`` that names the key (``sir.ratio``), so a long run never dies an hour in on a typo.
"""
from __future__ import annotations

import math
from typing import Any

from ..data.calib import MIN_FRAMES
from ..errors import ConfigError
from ..ssl.criteria import CRITERIA
from .config import AMP_MODES, DATA_KINDS, LR_SOURCES, STAGES, TrainConfig, gt_weight

# (key, lowest, highest, lowest is exclusive) for numbers; checked after types.
_RANGES: tuple[tuple[str, float, float, bool], ...] = (
    ("model.num_feat", 1, 1024, False), ("model.num_block", 1, 200, False),
    ("data.clip_length", 2, 10000, False), ("data.patch_size", 8, 4096, False),
    ("data.batch_size", 1, 4096, False), ("data.num_workers", 0, 256, False),
    ("val.max_clips", 0, math.inf, False), ("val.max_frames", 0, math.inf, False),
    ("val.crop", 0, 4096, False), ("val.every", 1, math.inf, False),
    ("pretrain.iterations", 1, math.inf, False), ("pretrain.lr", 0, 1, True), ("pretrain.spynet_lr", 0, 1, False),
    ("pretrain.spynet_frozen_iters", 0, math.inf, False), ("pretrain.eta_min", 0, 1, False),
    ("pretrain.charbonnier_eps", 0, 1, True),
    ("sir.ratio", 0, 0.99, True), ("sir.min_keep", 1, 1024, False), ("sir.align", 1, 64, False),
    ("sir.delta", 0, 10, True), ("sir.t1", 1, math.inf, False), ("sir.tau", 0, 1000, True),
    ("sir.stabilize_iters", 0, math.inf, False), ("sir.lr", 0, 1, True), ("sir.gamma_lr", 0, 10, True),
    ("sir.charbonnier_eps", 0, 1, True), ("prune.calib_frames", MIN_FRAMES, 1000, False),
    ("finetune.iterations", 1, math.inf, False), ("finetune.lr", 0, 1, True), ("finetune.spynet_lr", 0, 1, False),
    ("finetune.spynet_frozen_iters", 0, math.inf, False), ("finetune.eta_min", 0, 1, False),
    ("finetune.charbonnier_eps", 0, 1, True), ("finetune.tf_weight", 0, 1e6, False),
    ("runtime.seed", 0, 2**32 - 1, False), ("runtime.log_every", 1, math.inf, False),
    ("runtime.checkpoint_every", 1, math.inf, False), ("data.lr_cache_mb", 1, 2**30, False),
    *((f"{stage}.distill.{name}", 0, 1e6, False) for stage in ("sir", "finetune")
      for name in ("sr_weight", "hidden_weight", "gt_weight")),
)
_CHOICES = {"data.kind": DATA_KINDS, "data.lr": LR_SOURCES, "runtime.amp": AMP_MODES,
            "model.variant": ("basicvsr", "basicvsr-uni"), "sir.criterion": CRITERIA}


def _get(cfg: TrainConfig, key: str) -> Any:
    node: Any = cfg
    for name in key.split("."):
        node = getattr(node, name)
    return node


def distills(cfg: TrainConfig, stage: str) -> bool:
    """Whether ``stage`` (sir | finetune) trains against the dense teacher's SR frames or hidden states."""
    d = getattr(cfg, stage).distill
    return d.sr_weight > 0 or d.hidden_weight > 0


def check_config(cfg: TrainConfig) -> None:
    """Refuse (``ConfigError``, naming the key) a typed config whose values or combination cannot run."""
    for key, lo, hi, exclusive in _RANGES:
        value = _get(cfg, key)
        if value is None:
            continue
        if (value <= lo if exclusive else value < lo) or value > hi:
            left = "(" if exclusive else "["
            raise ConfigError(f"{key} = {value} is out of range {left}{lo}, {hi}]")
    for key, choices in _CHOICES.items():
        if _get(cfg, key) not in choices:
            raise ConfigError(f"{key} = {_get(cfg, key)!r} is not one of {', '.join(choices)}")
    if not cfg.stages:
        raise ConfigError(f"stages is empty (use some of: {', '.join(STAGES)})")
    bad = [s for s in cfg.stages if s not in STAGES]
    if bad:
        raise ConfigError(f"stages: unknown stage {bad[0]!r} (use some of: {', '.join(STAGES)})")
    if list(cfg.stages) != sorted(set(cfg.stages), key=STAGES.index):
        raise ConfigError(f"stages must be in order {', '.join(STAGES)} without repeats, got {cfg.stages}")
    if "sir" in cfg.stages and "prune" in cfg.stages:
        raise ConfigError("stages: sir and prune each cut the network (SIR's cut, or prune's cut and reconstruction "
                          "without SIR): run one of them")
    if {"sir", "prune"} & set(cfg.stages) and cfg.sir.criterion == "scale":
        raise ConfigError("sir.criterion = scale ranks units by SIR's scale factors, which the network has not got "
                          "when the plan is made (before SIR, or without it): use contribution, l1 or l1-mean")
    if "prune" in cfg.stages and cfg.prune.calib is None and cfg.data.kind != "lr-only":
        raise ConfigError("prune.calib is needed with data.kind = " + cfg.data.kind + ": the LR clip (frame folder "
                          "or video) to measure and reconstruct the cut on (lr-only data uses its first clip)")
    for section in ("pretrain", "sir", "finetune"):
        betas = getattr(cfg, section).betas
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ConfigError(f"{section}.betas must be two numbers in [0, 1), got {betas}")
    for name, cap in cfg.sir.max_ratio.items():
        if not 0.0 <= cap <= 1.0:
            raise ConfigError(f"sir.max_ratio.{name} = {cap} is out of range [0, 1]")
    dev = cfg.runtime.device
    if dev not in ("auto", "cpu", "cuda") and not (dev.startswith("cuda:") and dev[5:].isdigit()):
        raise ConfigError(f"runtime.device = {dev!r} is not one of auto, cpu, cuda, cuda:N")
    if cfg.data.kind == "vimeo" and cfg.data.clip_length > 7:
        raise ConfigError(f"data.clip_length = {cfg.data.clip_length}: Vimeo-90K septuplets have 7 frames")
    if cfg.data.lr == "disk" and cfg.data.kind == "folder" and cfg.data.root and not cfg.data.lr_root:
        raise ConfigError("data.lr_root is needed when data.lr = disk for a folder dataset "
                          "(or set data.lr to BI or BD to make LR frames on the fly)")
    if cfg.data.kind == "lr-only":
        _validate_lr_only(cfg)
    for stage in ("sir", "finetune"):
        if stage in cfg.stages:
            _validate_distill(cfg, stage)


def _validate_lr_only(cfg: TrainConfig) -> None:
    d, v = cfg.data, cfg.val
    if not d.lr_root:
        raise ConfigError("data.lr_root is needed for data.kind = lr-only: the video file, folder of LR frames "
                          "or folder of LR clips to train on")
    if d.root:
        raise ConfigError("data.root is for datasets with GT; data.kind = lr-only trains on data.lr_root alone "
                          "(set data.root to null, or data.kind to folder to train on GT)")
    if d.lr != "disk":
        raise ConfigError(f"data.lr = {d.lr} makes LR frames from GT, which data.kind = lr-only does not have "
                          f"(leave data.lr at disk)")
    if d.cache:
        raise ConfigError("data.cache (HDF5) holds GT datasets; data.kind = lr-only keeps its decoded frames in "
                          "memory instead (data.lr_cache_mb): set data.cache to null")
    if "pretrain" in cfg.stages:
        raise ConfigError("the pretrain stage trains against GT, which data.kind = lr-only does not have "
                          "(run sir and finetune, distilling from the dense network)")
    if v.root is None and v.clips:
        raise ConfigError("val.clips: data.kind = lr-only has no GT to validate on (set val.root and val.lr_root "
                          "to a clip with GT, or val.clips to null)")


def _validate_distill(cfg: TrainConfig, stage: str) -> None:
    d = getattr(cfg, stage).distill
    key = f"{stage}.distill"
    if cfg.data.kind == "lr-only":
        if d.gt_weight:
            raise ConfigError(f"{key}.gt_weight = {d.gt_weight}: data.kind = lr-only has no GT (set it to null or 0)")
        if not distills(cfg, stage):
            raise ConfigError(f"{stage}: data.kind = lr-only has no GT and {key} is off: set {key}.sr_weight "
                              f"(e.g. 1.0) to train against the dense network's outputs")
    if gt_weight(d, cfg.data.kind != "lr-only") == 0 and d.sr_weight == 0:
        raise ConfigError(f"{stage}: nothing trains the output frames ({key}.gt_weight and {key}.sr_weight are "
                          f"both 0): set one of them above 0")
    if stage == "finetune" and distills(cfg, stage) and cfg.stages == ["finetune"] and cfg.finetune.teacher is None:
        raise ConfigError("finetune.teacher (the dense network) is needed for finetune.distill when finetune runs "
                          "without sir (or set finetune.distill.sr_weight and hidden_weight to 0)")

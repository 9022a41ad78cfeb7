"""Every file a training run will read, read now: bounded, before the first unit of work.

Why a module of its own: a bad teacher, saved state or plan used to surface only when its stage began, hours in.
These checks run before the run folder is marked (a refused input leaves the folder exactly as it was); the data
are checked by ``build_data``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.calib import read_calibration
from ..errors import CheckpointError, ConfigError, UserError
from ..io.checkpoint import load_checkpoint
from ..io.weights import weights_file
from ..models.spec import ArchSpec, dense_spec
from ..recover.reconstruct import ReconstructSettings
from ..ssl.feasible import check_feasible
from .config import TrainConfig, plan_settings
from .stages import stage_iterations
from .state import check_total, load_state, model_from_state, state_path

DENSE_FILE = "dense.pth"      # the network that entered the cutting stage (the TF teacher)
CUT_FILE = "cut.pth"          # the prune stage's (reconstructed) cut, read back when a run resumes


def weights_path(cfg: TrainConfig) -> Path:
    """The file ``model.weights`` names (an ``official:`` name as the package's file)."""
    return weights_file(cfg.model.weights, "model.weights")


def resumes_cut(cfg: TrainConfig, run_dir: Path, resume: bool) -> bool:
    """Whether the prune stage goes on from the cut the resumed run saved (``cut.pth``) rather than cutting."""
    return resume and "prune" in cfg.stages and (run_dir / CUT_FILE).is_file()


def reconstruct_settings(cfg: TrainConfig) -> ReconstructSettings:
    return ReconstructSettings(max_frames=cfg.prune.calib_frames)


def check_run_inputs(cfg: TrainConfig, run_dir: Path, world: int, resume: bool) -> np.ndarray | None:
    """Refuse now what a stage would refuse when it began. Returns ``prune.calib``'s frames when the prune stage
    will measure and reconstruct on them (read here, once), else None."""
    if cfg.stages[0] != "pretrain" and cfg.model.weights is None:
        raise ConfigError(f"model.weights is needed to start with {cfg.stages[0]} (null trains from scratch, "
                          f"which only the pretrain stage does)")
    if cfg.data.batch_size % world:
        raise ConfigError(f"data.batch_size = {cfg.data.batch_size} cannot be split over {world} processes")
    spec = _source_spec(cfg)
    if "sir" in cfg.stages or "prune" in cfg.stages:
        _check_plan(cfg, spec)
    calib = None
    if "prune" in cfg.stages and cfg.prune.calib is not None and not resumes_cut(cfg, run_dir, resume):
        calib = read_calibration(cfg.prune.calib, reconstruct_settings(cfg).frames_to_read)
    if cfg.stages == ["finetune"] and cfg.finetune.tf_weight > 0 and cfg.finetune.teacher is None:
        raise ConfigError("finetune.teacher (the unpruned network) is needed for TF when finetune runs "
                          "without sir (or set finetune.tf_weight to 0)")
    if "finetune" in cfg.stages and cfg.finetune.teacher is not None:
        check_teacher(weights_file(cfg.finetune.teacher, "finetune.teacher"), spec)
    if resume:
        _check_saved_states(cfg, run_dir)
    return calib


def _source_spec(cfg: TrainConfig) -> ArchSpec:
    """The network entering the first stage, its file loaded now (bounded, NaN refused) to fail early."""
    m = cfg.model
    if m.weights is None:
        return dense_spec(m.variant, m.num_feat, m.num_block)
    path = weights_path(cfg)
    if not path.is_file():
        raise ConfigError(f"model.weights: no such file {m.weights}")
    try:
        return load_checkpoint(path).spec
    except CheckpointError as e:
        raise CheckpointError(f"model.weights: {e}") from None


def _check_saved_states(cfg: TrainConfig, run_dir: Path) -> None:
    """A resume reads each stage's saved state, and SIR the dense network it started from, when the stage
    begins: read them now (``dense.pth`` only where no pretrain rewrites it first)."""
    for stage in cfg.stages:
        path = state_path(run_dir, stage)
        if path.is_file():
            state = load_state(path)
            model_from_state(state)
            total = stage_iterations(cfg, stage)
            if total is not None:
                check_total(state, stage, total)       # refused now, before run_config.yaml is written
    dense = run_dir / DENSE_FILE
    if {"sir", "prune"} & set(cfg.stages) and "pretrain" not in cfg.stages and dense.is_file():
        load_checkpoint(dense)
    if resumes_cut(cfg, run_dir, True):
        load_checkpoint(run_dir / CUT_FILE)


def _check_plan(cfg: TrainConfig, spec: ArchSpec) -> None:
    """The ``sir`` plan fits the network the cutting stage will start from and prunes some unit: its layer
    names, widths, floor and ratio are refused now, not after ``dense.pth`` is written."""
    try:
        check_feasible(spec, plan_settings(cfg.sir, spec))
    except UserError as e:
        raise ConfigError(f"sir plan: {e}") from None


def check_teacher(path: Path, source: ArchSpec) -> None:
    """``finetune.teacher`` is read only when finetune begins (after pretrain and SIR: hours with the paper
    configs): load it now, bounded (missing file, NaN, sparse or oversized tensors refused in one line), and
    check that TF can compare its hidden states with those of the network being trained."""
    try:
        teacher = load_checkpoint(path).spec
    except CheckpointError as e:
        raise CheckpointError(f"finetune.teacher: {e}") from None
    if (teacher.variant, teacher.num_feat) != (source.variant, source.num_feat):
        raise ConfigError(f"finetune.teacher {path} is a {teacher.variant} with {teacher.num_feat} hidden "
                          f"channels, but the network trained is a {source.variant} with {source.num_feat}: "
                          f"Temporal Finetuning compares their hidden states, so these must match")

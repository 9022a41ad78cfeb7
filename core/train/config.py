"""The training configuration: one YAML file, typed sections with the paper's values as defaults.

Every key is checked before anything runs: an unknown key, a wrong type or an out-of-range value raises a
``ConfigError`` that names the key (``sir.ratio``), so a long run never dies an hour in on a typo.
Relative paths in a YAML file are taken relative to that file; paths given as ``--set`` overrides relative to
the working directory.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..errors import ConfigError
from ..io.safe_yaml import YAMLLimitError, load_yaml_file, load_yaml_text
from ..data.calib import CALIB_FRAMES, MIN_FRAMES
from ..ssl.criteria import CRITERIA, DEFAULT_CRITERION
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
class PretrainConfig:
    """Optional dense training before SIR (BasicSR's recipe)."""

    iterations: int = 300000
    lr: float = 2e-4
    spynet_lr: float = 2.5e-5
    spynet_frozen_iters: int = 5000
    eta_min: float = 1e-7
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    charbonnier_eps: float = 1e-6


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
class FinetuneConfig:
    """Finetuning of the pruned network with Charbonnier + λ_TF · Temporal Finetuning."""

    iterations: int = 300000
    lr: float = 2e-4
    spynet_lr: float = 2.5e-5
    spynet_frozen_iters: int = 0
    eta_min: float = 1e-7
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    charbonnier_eps: float = 1e-6
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


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults when ``path`` is None), apply ``key.sub=value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        loaded = load_yaml_file(p)      # bounded: alias bombs, binary files, huge files refused in one line
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
        raw = _resolve_paths(loaded or {}, p.resolve().parent)
    for item in overrides:
        key, value = _parse_override(item)
        _set_nested(raw, key, _resolve_paths_value(key, value, Path.cwd()))
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a config from plain data (unknown keys and bad values raise ConfigError)."""
    cfg = _build(TrainConfig, raw, "")
    _validate(cfg)
    return cfg


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (written into every run folder)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


# -- overrides ---------------------------------------------------------------------------------------
def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key.sub=value")
    try:
        value = load_yaml_text(text, f"override {key}") if text.strip() else None
    except YAMLLimitError:
        raise
    except ConfigError:       # not YAML: taken as the plain string the user typed
        value = text
    return key, value


def _set_nested(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    for key in PATH_KEYS:
        section, name = key.split(".")
        node = raw.get(section)
        if isinstance(node, dict) and name in node:
            node[name] = _resolve_paths_value(key, node[name], base)
    return raw


def _resolve_paths_value(key: str, value: Any, base: Path) -> Any:
    if key not in PATH_KEYS or not isinstance(value, str) or value.startswith("official:"):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


# -- typed construction ----------------------------------------------------------------------------
def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} (known here: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in raw.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        kwargs[name] = _build(tp, value, f"{key}.") if dataclasses.is_dataclass(tp) else _coerce(value, tp, key)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_coerce(k, kt, f"{key}"): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 2e-4 (no dot) as a string
            except ValueError:
                pass
        if isinstance(value, int) and abs(value) > 1e308:   # math.isfinite would raise OverflowError
            raise ConfigError(f"{key} must be a finite number, got an integer of {len(str(abs(value)))} digits")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {tp} for {key}")


def _get(cfg: TrainConfig, key: str) -> Any:
    node: Any = cfg
    for name in key.split("."):
        node = getattr(node, name)
    return node


def gt_weight(distill: DistillConfig, has_gt: bool) -> float:
    """The weight of Charbonnier to GT: ``distill.gt_weight``, or when null 1 with GT and 0 without (lr-only)."""
    return (1.0 if has_gt else 0.0) if distill.gt_weight is None else distill.gt_weight


def distills(cfg: TrainConfig, stage: str) -> bool:
    """Whether ``stage`` (sir | finetune) trains against the dense teacher's SR frames or hidden states."""
    d = getattr(cfg, stage).distill
    return d.sr_weight > 0 or d.hidden_weight > 0


def _validate(cfg: TrainConfig) -> None:
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

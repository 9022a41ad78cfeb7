"""Load any BasicVSR checkpoint people have (BasicSR, MMagic/mmedit, plain, this project's model files).

Checkpoints are untrusted input: they are read with ``torch.load(weights_only=True)`` only, every size they
imply is bounded (``limits``) before a network is allocated, and every refusal says in one line what is wrong. The project's own model file is a plain dict of tensors plus a JSON spec,
so a pruned network rebuilds without any pickled class.
"""
from __future__ import annotations

import copy
import json
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from ..errors import CheckpointError
from ..models.basicvsr import BasicVSR
from ..models.spec import MAX_BLOCKS, MAX_WIDTH, ArchSpec, BlockSpec, HEAD_WIDTH, check_bounds
from .limits import check_file, check_tensor_budget, expected_shapes, first_nonfinite
from .missing import why_missing
from .output import OutputError, staged_file

MODEL_FORMAT = "ssl-vsr-model"
MODEL_FORMAT_VERSION = 1
_IGNORED_KEYS = {"step_counter"}


@dataclass
class LoadedModel:
    """A network ready to run, and where it came from."""

    model: BasicVSR
    path: Path
    source_format: str                      # basicsr | mmagic | plain | ssl-vsr-model
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ArchSpec:
        return self.model.spec

    @property
    def is_pruned(self) -> bool:
        return not self.spec.is_dense


# -- reading -------------------------------------------------------------------------------------------
def read_torch_file(path: str | Path) -> Any:
    """``torch.load`` with weights_only, turning every failure into a one-line CheckpointError."""
    p = Path(path)
    missing = why_missing(p)
    if missing is not None:
        raise CheckpointError(f"{p}: {missing}")
    if not p.is_file():
        raise CheckpointError(f"{p}: not a file (a checkpoint is a .pth/.pt file)")
    try:
        check_file(p)
        with warnings.catch_warnings():     # torch's own remarks on what a file holds (sparse CSR is "beta") came
            warnings.simplefilter("ignore")  # before our one line about it: the file is judged here, by us
            return torch.load(p, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read ({e.strerror or e})") from None
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise CheckpointError(f"{p}: refused, it holds pickled Python objects ({found[1]}) that a safe load "
                                  f"(weights_only=True) will not run") from None
        raise CheckpointError(f"{p}: not a PyTorch checkpoint (unreadable pickle data)") from None
    except Exception as e:  # torch.load raises many types on garbage; all mean "not a checkpoint"
        text = str(e).strip()
        first = text.splitlines()[0] if text else ""
        first = f"{type(e).__name__}: {first}" if first else type(e).__name__
        raise CheckpointError(f"{p}: not a PyTorch checkpoint ({first[:160]})") from None


def _tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _mmagic_to_basicsr(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename MMagic/mmedit BasicVSRNet keys to BasicSR's."""
    out = {}
    for key, value in state.items():
        if key.startswith("generator."):
            key = key[len("generator."):]
        if key in _IGNORED_KEYS:
            continue
        key = re.sub(r"^spynet\.basic_module\.(\d+)\.basic_module\.(\d+)\.conv\.",
                     lambda m: f"spynet.basic_module.{m[1]}.basic_module.{2 * int(m[2])}.", key)
        key = re.sub(r"^upsample([12])\.upsample_conv\.", r"upconv\1.", key)
        key = re.sub(r"^(backward|forward)_resblocks\.", r"\1_trunk.", key)
        out[key] = value
    return out


def _is_mmagic(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("generator.") or "_resblocks." in k or ".upsample_conv." in k for k in state)


def unwrap_state_dict(obj: Any, path: Path, param_key: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Find the network's tensors inside whatever container the file uses; return them with BasicSR names."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not a BasicVSR checkpoint (holds a {type(obj).__name__}, not a dict of tensors)")
    if param_key is not None:
        if param_key not in obj:
            raise CheckpointError(f"{path}: has no '{param_key}' entry (it has: {', '.join(map(str, list(obj)[:8]))})")
        candidates = [param_key]
    else:
        candidates = ["params_ema", "params", "state_dict", "model", "generator"]
    for key in candidates:
        inner = obj.get(key)
        if _tensor_dict(inner):
            if _is_mmagic(inner):
                return _mmagic_to_basicsr(inner), "mmagic"
            return {k: v for k, v in inner.items() if k not in _IGNORED_KEYS}, "basicsr" if key.startswith("params") else "plain"
    if _tensor_dict(obj):
        if _is_mmagic(obj):
            return _mmagic_to_basicsr(obj), "mmagic"
        return {k: v for k, v in obj.items() if k not in _IGNORED_KEYS}, "plain"
    raise CheckpointError(f"{path}: not a BasicVSR checkpoint (no dict of tensors under "
                          f"{', '.join(repr(c) for c in candidates)} or at the top level)")


def infer_spec(state: Mapping[str, torch.Tensor], path: Path) -> ArchSpec:
    """Variant, channels, block count and dense widths, read off the tensors' names and shapes."""
    first = state.get("forward_trunk.main.0.weight")
    if first is None or first.dim() != 4:
        raise CheckpointError(f"{path}: not a BasicVSR checkpoint (no 'forward_trunk.main.0.weight' tensor; "
                              f"first keys: {', '.join(list(state)[:4])})")
    num_feat = first.shape[0]
    if first.shape[1] != num_feat + 3:
        raise CheckpointError(f"{path}: tensor 'forward_trunk.main.0.weight' has shape {tuple(first.shape)}, "
                              f"expected ({num_feat}, {num_feat + 3}, 3, 3)")
    if num_feat > MAX_WIDTH:     # bounded before anything is read off it
        raise CheckpointError(f"{path}: refused, num_feat = {num_feat} is wider than the limit of {MAX_WIDTH} channels")
    bidirectional = "backward_trunk.main.0.weight" in state
    variant = "basicvsr" if bidirectional else "basicvsr-uni"

    def n_blocks(trunk: str) -> int:
        idx = {int(m[1]) for k in state if (m := re.match(rf"{trunk}\.main\.2\.(\d{{1,9}})\.conv1\.weight$", k))}
        return max(idx) + 1 if idx else 0

    def blocks(trunk: str, n: int) -> tuple[BlockSpec, ...]:
        out = []
        for k in range(n):
            w = state.get(f"{trunk}.main.2.{k}.conv1.weight")
            out.append(BlockSpec(mid=int(w.shape[0]) if w is not None and w.dim() == 4 else num_feat))
        return tuple(out)

    nb = n_blocks("forward_trunk")
    if nb == 0:
        raise CheckpointError(f"{path}: not a BasicVSR checkpoint (forward trunk has no residual blocks)")
    if max(nb, n_blocks("backward_trunk")) > MAX_BLOCKS:
        raise CheckpointError(f"{path}: refused, a trunk has more than the limit of {MAX_BLOCKS} residual blocks")

    def out_ch(key: str, default: int, per: int = 1) -> int:
        t = state.get(key)
        return int(t.shape[0]) // per if t is not None and t.dim() == 4 else default

    return _bounded(ArchSpec(
        variant=variant, num_feat=num_feat, forward_blocks=blocks("forward_trunk", nb),
        backward_blocks=blocks("backward_trunk", nb) if bidirectional else (),
        fusion=out_ch("fusion.weight", num_feat), upconv1=out_ch("upconv1.weight", num_feat, 4),
        upconv2=out_ch("upconv2.weight", HEAD_WIDTH, 4), conv_hr=out_ch("conv_hr.weight", HEAD_WIDTH)), path)


def _bounded(spec: ArchSpec, path: Path) -> ArchSpec:
    """``spec``, refused in one line when its widths or depth pass the bounds of ``spec.check_bounds``."""
    try:
        check_bounds(spec)
    except ValueError as e:
        raise CheckpointError(f"{path}: refused, {e}") from None
    return spec


def build_model(spec: ArchSpec, state: Mapping[str, torch.Tensor], path: Path, *,
                allow_nonfinite: bool = False) -> BasicVSR:
    """Instantiate ``spec`` and load ``state`` strictly, naming missing keys, mis-shaped and non-finite tensors.

    Every check runs on names and shapes against a meta-device copy of the network first, so a file that
    describes a huge network (or holds stride-0 tensors of huge shapes) is refused without allocating it.
    """
    check_tensor_budget(state, path)
    expected = expected_shapes(_bounded(spec, path), path)
    missing = [k for k in expected if k not in state]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CheckpointError(f"{path}: missing keys {', '.join(missing[:5])}{more}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        raise CheckpointError(f"{path}: unexpected keys {', '.join(unexpected[:5])}{more} (not a BasicVSR of this layout)")
    for key, shape in expected.items():
        got = state[key]
        if tuple(got.shape) != shape:
            raise CheckpointError(f"{path}: tensor '{key}' has shape {tuple(got.shape)}, expected {shape}")
        if not got.is_floating_point():
            raise CheckpointError(f"{path}: tensor '{key}' has dtype {got.dtype}, expected a float tensor")
    bad = None if allow_nonfinite else first_nonfinite(state, list(expected))
    if bad is not None:
        raise CheckpointError(f"{path}: tensor '{bad}' holds NaN or infinite values (a broken training run?); "
                              f"refused, --allow-nonfinite loads it for inspection")
    model = BasicVSR(spec)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval()


def load_checkpoint(path: str | Path, param_key: str | None = None, *, allow_nonfinite: bool = False) -> LoadedModel:
    """Load a BasicVSR / BasicVSR-uni network, dense or pruned, from any supported file.

    ``allow_nonfinite`` loads a network with NaN/Inf weights (for inspection); by default it is refused.
    """
    p = Path(path)
    obj = read_torch_file(p)
    if isinstance(obj, Mapping) and obj.get("format") == MODEL_FORMAT:
        return _load_model_file(obj, p, allow_nonfinite)
    state, fmt = unwrap_state_dict(obj, p, param_key)
    check_tensor_budget(state, p)
    spec = infer_spec(state, p)
    return LoadedModel(build_model(spec, state, p, allow_nonfinite=allow_nonfinite), p, fmt, {"source": str(p)})


def _load_model_file(obj: Mapping[str, Any], path: Path, allow_nonfinite: bool = False) -> LoadedModel:
    version = obj.get("version")
    if version != MODEL_FORMAT_VERSION:
        raise CheckpointError(f"{path}: model file version {version!r} is not supported (expected {MODEL_FORMAT_VERSION})")
    try:
        spec = ArchSpec.from_json(json.loads(obj["spec"]))
        meta = json.loads(obj.get("meta", "{}"))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: damaged model file (spec unreadable: {e})") from None
    except RecursionError:
        raise CheckpointError(f"{path}: damaged model file (spec or meta nested too deeply)") from None
    except ValueError as e:
        raise CheckpointError(f"{path}: inconsistent pruned spec: {e}") from None
    state = obj.get("state_dict")
    if not _tensor_dict(state):
        raise CheckpointError(f"{path}: damaged model file (no state_dict of tensors)")
    return LoadedModel(build_model(spec, state, path, allow_nonfinite=allow_nonfinite), path, MODEL_FORMAT,
                       meta if isinstance(meta, dict) else {})


# -- writing -------------------------------------------------------------------------------------------
class ReloadCheck:
    """A ``verify`` for ``save_model``: the written file must load and give ``model``'s output (to 1e-6).

    After the check, ``diff`` holds the max |difference| measured at ``SHAPE`` (frames, h, w), for the report.
    """

    SHAPE = (3, 32, 32)

    def __init__(self, model: BasicVSR) -> None:
        self.model, self.diff = model, None

    @torch.no_grad()
    def __call__(self, path: Path) -> None:
        reloaded = load_checkpoint(path).model
        g = torch.Generator().manual_seed(0)
        t, h, w = self.SHAPE
        x = torch.rand(1, t, 3, h, w, generator=g)
        reference = copy.deepcopy(self.model).cpu().float().eval()      # never touch the caller's model
        self.diff = float((reloaded(x) - reference(x)).abs().max())
        if not self.diff <= 1e-6:
            raise OutputError(f"the written model file does not reproduce the network (max |diff| "
                              f"{self.diff:.2e}); nothing was written")


def save_model(model: BasicVSR, path: str | Path, meta: Mapping[str, Any] | None = None, *, overwrite: bool = False,
               inputs: Sequence[str | Path | None] = (), verify: Callable[[Path], None] | None = None) -> Path:
    """Write a model file (plain tensors + JSON spec/meta) under the output rule. γ must already be folded away.

    ``verify(tmp)`` runs on the written file before it is moved into place (a failed check leaves nothing).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if any("gamma" in k for k in state):
        raise ValueError("fold the scale factors into the weights before saving a model file")
    payload = {"format": MODEL_FORMAT, "version": MODEL_FORMAT_VERSION,
               "spec": json.dumps(model.spec.to_json()),
               "meta": json.dumps(dict(meta or {}), default=str),
               "state_dict": state}
    with staged_file(path, overwrite=overwrite, inputs=inputs, verify=verify) as tmp:
        torch.save(payload, tmp)   # a failed write (full disk): staged_file makes torch's RuntimeError one line
    return Path(path)

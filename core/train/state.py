"""Resumable training state: one file per stage, written atomically, read back with ``weights_only=True``.

A state holds everything that decides the rest of the run — weights (γ included), optimizer, scheduler,
gradient scaler, SIR's λ schedule, RNG states and the iteration count (which is also the data position, see
``core.data.patches``) — so a killed run resumed from it ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, UserError
from ..io.output import staged_file
from ..io.checkpoint import read_torch_file
from ..io.limits import expected_shapes
from ..models.basicvsr import BasicVSR
from ..models.spec import ArchSpec
from ..ssl import attach_scale_factors, scale_factors

STATE_FORMAT = "ssl-vsr-train-state"
STATE_VERSION = 1


def state_path(run_dir: str | Path, stage: str) -> Path:
    """Where a stage keeps its last state: ``RUN/checkpoints/<stage>_last.pth``."""
    return Path(run_dir) / "checkpoints" / f"{stage}_last.pth"


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: str | Path, stage: str, iteration: int, total: int, model: BasicVSR,
               parts: dict[str, Any]) -> Path:
    """Write a stage's state atomically (a reader never sees a half-written file)."""
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, "stage": stage, "iteration": iteration,
               "total": total, "spec": json.dumps(model.spec.to_json()), "gamma": bool(scale_factors(model)),
               "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "rng": rng_state(), **parts}
    with staged_file(path, overwrite=True) as tmp:   # the run's own file
        torch.save(payload, tmp)
    return Path(path)


def check_total(state: dict[str, Any], stage: str, total: int) -> None:
    """A state continues only the run it was saved by: the same number of iterations for its stage."""
    if state.get("total") != total:
        raise UserError(f"{stage}: the saved state is for {state.get('total')} iterations but the config asks for "
                        f"{total}; resume with the config the run was started with")


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state file, refusing anything that is not one (one-line CheckpointError)."""
    obj = read_torch_file(path)
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a training state file")
    if obj.get("version") != STATE_VERSION:
        raise CheckpointError(f"{path}: training state version {obj.get('version')!r} is not supported")
    return obj


def model_from_state(state: dict[str, Any]) -> BasicVSR:
    """Rebuild the network a state was saved from, with its scale factors when it had them.

    A state file comes from a folder the user names (``--resume``): its spec is bounded (widths, depth, total
    size) before the network is built, and a damaged file is refused in one line.
    """
    try:
        spec = ArchSpec.from_json(json.loads(state["spec"]))
    except (KeyError, TypeError, ValueError, RecursionError) as e:
        raise CheckpointError(f"training state: unreadable network spec ({e})") from None
    expected_shapes(spec, Path("training state"))          # refuses a network past the size limit
    model = BasicVSR(spec)
    if state.get("gamma"):
        attach_scale_factors(model)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"training state: weights do not match its network spec ({e})") from None
    return model

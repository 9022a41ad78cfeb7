"""The files a network is handed over as — the project's model file, ONNX (fp32/int8), the HDF5 report — each
written under the output rule (``core.io.output``) and verified before it is moved into place.

TorchScript is gone: ``torch.jit`` is deprecated, and a traced TorchScript file was fixed to one clip shape. The
ONNX file replaces it for every runtime (any frames, height and width; see ``onnx_graph``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from ..errors import UserError
from ..io.checkpoint import ReloadCheck, save_model
from ..io.h5write import staged_hdf5
from ..models.basicvsr import BasicVSR
from ..ssl.plan import Plan, stored_plan
from .check import ExportCheck

EXPORT_FORMATS = ("model", "onnx", "h5")


def example_input(frames: int = 5, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, frames, 3, height, width, generator=g)


def export_model_file(model: BasicVSR, path: str | Path, meta: Mapping[str, Any] | None = None, *,
                      overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> ExportCheck:
    """The project's model file (loads anywhere with weights_only), reloaded and compared before the move."""
    check = ReloadCheck(model)
    save_model(model, path, meta, overwrite=overwrite, inputs=tuple(inputs), verify=check)
    return ExportCheck(Path(path), "model", check.diff, 1e-6,
                       f"{model.spec.variant}, {model.count_parameters(include_spynet=False):,} parameters, "
                       "reloaded and compared", shapes=(ReloadCheck.SHAPE,))


def export_as(fmt: str, model: BasicVSR, path: str | Path, *, plan: Plan | None = None,
              meta: Mapping[str, Any] | None = None, metrics: Mapping[str, Any] | None = None,
              frame_size: tuple[int, int] = (180, 320), overwrite: bool = False,
              inputs: Iterable[str | Path] = (), **onnx_options: Any) -> ExportCheck:
    """Write ``model`` in one of EXPORT_FORMATS and verify it; the one entry point for the CLI and the GUI.

    ``onnx_options`` go to ``export_onnx`` (precision, calib, calib_gt, max_drop, shapes).
    """
    if fmt == "model":
        return export_model_file(model, path, meta, overwrite=overwrite, inputs=inputs)
    if fmt == "onnx":
        from .onnx_export import export_onnx

        return export_onnx(model, path, meta=meta, overwrite=overwrite, inputs=inputs, **onnx_options)
    if fmt == "h5":
        from ..profile.macs import frame_macs

        height, width = frame_size
        macs, spynet = frame_macs(model.spec, height, width)
        info = {"spec": model.spec.to_json(), "params": model.count_parameters(False), "frame_size": [height, width],
                "macs_per_frame": macs, "macs_spynet": spynet, **dict(meta or {})}
        stored = plan if plan is not None else stored_plan(meta or {}, (meta or {}).get("source", "the model"))
        return write_report_h5(path, stored, metrics, info, overwrite=overwrite, inputs=inputs)
    raise UserError(f"unknown export format {fmt!r} (use one of: {', '.join(EXPORT_FORMATS)})")


def write_report_h5(path: str | Path, plan: Plan | Mapping[str, Any] | None = None,
                    metrics: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None, *,
                    overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> ExportCheck:
    """HDF5 report: plan totals and per-layer scores / kept indices, MACs, metrics and free-form meta.

    ``plan`` is a Plan or its ``to_json(scores=True)`` form (as stored in a pruned model file's meta).
    """
    import h5py

    data = plan.to_json(scores=True) if isinstance(plan, Plan) else plan
    found: dict[str, int] = {}

    def verify(tmp: Path) -> None:
        with h5py.File(tmp, "r") as f:
            found["layers"] = len(f["plan/layers"]) if "plan" in f else 0

    with staged_hdf5(path, overwrite=overwrite, inputs=tuple(inputs), verify=verify) as out:
        f = out.file
        f.attrs["format"] = "ssl-vsr-report"
        f.attrs["meta"] = json.dumps({k: v for k, v in dict(meta or {}).items() if k != "plan"}, default=str)
        if data:
            _write_plan(f.create_group("plan"), data)
        if metrics:
            g = f.create_group("metrics")
            for key, value in metrics.items():
                g.create_dataset(key, data=np.asarray(value, dtype=np.float64))
    return ExportCheck(Path(path), "h5", None, None, f"{found['layers']} layers, reloaded")


def _write_plan(g, data: Mapping[str, Any]) -> None:
    for key in ("requested_ratio", "achieved_ratio", "criterion", "frame_size"):
        g.attrs[key] = data[key]
    g.attrs["threshold"] = np.nan if data.get("threshold") is None else data["threshold"]
    for when in ("before", "after"):
        for key, value in data[when].items():
            g.attrs[f"{when}_{key}"] = value
    layers = g.create_group("layers")
    for i, layer in enumerate(data["layers"]):
        lg = layers.create_group(f"{i:03d}_{layer['name']}")
        lg.attrs.update({k: layer[k] for k in ("name", "group", "kind", "total", "ratio", "limited")})
        lg.create_dataset("kept", data=np.asarray(layer["kept_indices"], dtype=np.int64))
        if "scores" in layer:
            lg.create_dataset("scores", data=np.asarray(layer["scores"], dtype=np.float64))

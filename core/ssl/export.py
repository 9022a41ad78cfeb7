"""Exports of a (pruned) network — TorchScript, ONNX, HDF5 report — each verified after writing.

TorchScript and ONNX are traced for one clip shape (frames × height × width): SpyNet's resize-to-32 rule
and the recurrent loop are unrolled for that shape, which is what deployment runtimes want anyway.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..io.atomic import atomic_path
from ..io.checkpoint import load_checkpoint, save_model
from ..models.basicvsr import BasicVSR
from .plan import Plan

EXPORT_FORMATS = ("model", "torchscript", "onnx", "h5")


@dataclass(frozen=True)
class ExportCheck:
    """What verification after writing found."""

    path: Path
    format: str
    max_abs_diff: float | None       # reloaded output vs the PyTorch model on the same input
    tolerance: float | None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.max_abs_diff is None or self.max_abs_diff <= self.tolerance

    def summary(self) -> str:
        if self.max_abs_diff is None:
            return f"{self.format}: wrote {self.path} ({self.detail})"
        verdict = "verified" if self.ok else "MISMATCH"
        return (f"{self.format}: wrote {self.path}; {verdict}, max |diff| {self.max_abs_diff:.2e} "
                f"(tolerance {self.tolerance:.0e}) {self.detail}").rstrip()


class _Traceable(torch.nn.Module):
    """Wraps the network so tracing sees a plain tensor → tensor function."""

    def __init__(self, model: BasicVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def example_input(frames: int = 5, height: int = 64, width: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, frames, 3, height, width, generator=g)


@torch.no_grad()
def export_model_file(model: BasicVSR, path: str | Path, meta: Mapping[str, Any] | None = None) -> ExportCheck:
    """The project's model file (loads anywhere with weights_only), reloaded and compared after writing."""
    save_model(model, path, meta)
    reloaded = load_checkpoint(path).model
    x = example_input(3, 32, 32)
    diff = float((reloaded(x) - model.cpu().eval()(x)).abs().max())
    return ExportCheck(Path(path), "model", diff, 1e-6,
                       f"{reloaded.spec.variant}, {reloaded.count_parameters(include_spynet=False):,} parameters")


def export_as(fmt: str, model: BasicVSR, path: str | Path, *, frames: int = 5, height: int = 64, width: int = 64,
              plan: Plan | None = None, meta: Mapping[str, Any] | None = None,
              metrics: Mapping[str, Any] | None = None) -> ExportCheck:
    """Write ``model`` in one of EXPORT_FORMATS and verify it; the one entry point for the CLI and the GUI."""
    if fmt == "model":
        return export_model_file(model, path, meta)
    if fmt == "torchscript":
        return export_torchscript(model, path, frames, height, width)
    if fmt == "onnx":
        return export_onnx(model, path, frames, height, width)
    if fmt == "h5":
        from ..profile.macs import frame_macs

        macs, spynet = frame_macs(model.spec, height, width)
        info = {"spec": model.spec.to_json(), "params": model.count_parameters(False), "frame_size": [height, width],
                "macs_per_frame": macs, "macs_spynet": spynet, **dict(meta or {})}
        return write_report_h5(path, plan if plan is not None else (meta or {}).get("plan"), metrics, info)
    raise ValueError(f"unknown export format {fmt!r} (use one of: {', '.join(EXPORT_FORMATS)})")


@torch.no_grad()
def export_torchscript(model: BasicVSR, path: str | Path, frames: int = 5, height: int = 64,
                       width: int = 64) -> ExportCheck:
    model = model.cpu().eval()
    x = example_input(frames, height, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(_Traceable(model), x, check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
        reloaded = torch.jit.load(str(path))
    diff = float((reloaded(x) - model(x)).abs().max())
    return ExportCheck(Path(path), "torchscript", diff, 1e-5, f"input (1,{frames},3,{height},{width})")


@torch.no_grad()
def export_onnx(model: BasicVSR, path: str | Path, frames: int = 5, height: int = 64, width: int = 64,
                opset: int = 18) -> ExportCheck:
    """Export with the dynamo-based exporter and check the file with onnxruntime against PyTorch."""
    try:
        import onnxruntime as ort
    except ImportError as e:  # the ``export`` extra is missing
        raise RuntimeError("ONNX export needs the 'export' extra: pip install onnx onnxscript onnxruntime") from e
    model = model.cpu().eval()
    x = example_input(frames, height, width)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(_Traceable(model), (x,), dynamo=True, opset_version=opset,
                                    input_names=["lr"], output_names=["sr"], verbose=False)
        program.save(str(tmp), external_data=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    diff = float(np.abs(out - model(x).numpy()).max())
    return ExportCheck(Path(path), "onnx", diff, 1e-4, f"input (1,{frames},3,{height},{width}), opset {opset}")


def write_report_h5(path: str | Path, plan: Plan | Mapping[str, Any] | None = None,
                    metrics: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None) -> ExportCheck:
    """HDF5 report: plan totals and per-layer scores / kept indices, MACs, metrics and free-form meta.

    ``plan`` is a Plan or its ``to_json(scores=True)`` form (as stored in a pruned model file's meta).
    """
    import h5py

    data = plan.to_json(scores=True) if isinstance(plan, Plan) else plan
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "ssl-vsr-report"
            f.attrs["meta"] = json.dumps({k: v for k, v in dict(meta or {}).items() if k != "plan"}, default=str)
            if data:
                _write_plan(f.create_group("plan"), data)
            if metrics:
                g = f.create_group("metrics")
                for key, value in metrics.items():
                    g.create_dataset(key, data=np.asarray(value, dtype=np.float64))
    with h5py.File(path, "r") as f:
        n_layers = len(f["plan/layers"]) if "plan" in f else 0
    return ExportCheck(Path(path), "h5", None, None, f"{n_layers} layers, reloaded")


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

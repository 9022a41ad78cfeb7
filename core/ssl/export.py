"""Exports of a (pruned) network — TorchScript, ONNX, HDF5 report — each verified after writing.

TorchScript and ONNX are traced for one clip shape (frames × height × width): SpyNet's resize-to-32 rule
and the recurrent loop are unrolled for that shape, which is what deployment runtimes want anyway.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..io.atomic import atomic_path
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


def write_report_h5(path: str | Path, plan: Plan | None = None, metrics: Mapping[str, Any] | None = None,
                    meta: Mapping[str, Any] | None = None) -> ExportCheck:
    """HDF5 report: plan totals and per-layer scores / kept indices, MACs, metrics and free-form meta."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = "ssl-vsr-report"
            f.attrs["meta"] = json.dumps(dict(meta or {}), default=str)
            if plan is not None:
                _write_plan(f.create_group("plan"), plan)
            if metrics:
                g = f.create_group("metrics")
                for key, value in metrics.items():
                    g.create_dataset(key, data=np.asarray(value, dtype=np.float64))
    with h5py.File(path, "r") as f:
        n_layers = len(f["plan/layers"]) if "plan" in f else 0
    return ExportCheck(Path(path), "h5", None, None, f"{n_layers} layers, reloaded")


def _write_plan(g, plan: Plan) -> None:
    g.attrs["requested_ratio"] = plan.requested_ratio
    g.attrs["achieved_ratio"] = plan.achieved_ratio
    g.attrs["criterion"] = plan.criterion
    g.attrs["threshold"] = plan.threshold if not math.isnan(plan.threshold) else np.nan
    g.attrs["frame_size"] = np.asarray(plan.frame_size)
    for when, totals in (("before", plan.before), ("after", plan.after)):
        for key, value in vars(totals).items():
            g.attrs[f"{when}_{key}"] = value
    g.attrs["spec_after"] = json.dumps(plan.spec_after.to_json())
    layers = g.create_group("layers")
    for i, layer in enumerate(plan.layers):
        lg = layers.create_group(f"{i:03d}_{layer.name}")
        lg.attrs.update({"name": layer.name, "group": layer.group, "kind": layer.kind, "total": layer.total,
                         "ratio": layer.ratio, "limited": layer.limited})
        lg.create_dataset("scores", data=np.asarray(layer.scores))
        lg.create_dataset("kept", data=np.asarray(layer.kept, dtype=np.int64))

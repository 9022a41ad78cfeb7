"""The work behind Export, run in a background job: write each chosen file, then verify it.

TorchScript, ONNX and the HDF5 report are core's exporters (each verifies itself). The pruned checkpoint is
written with core's ``save_model`` and verified here the same way: reload with ``load_checkpoint`` and compare
outputs with the in-memory network on one small input.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.io.checkpoint import load_checkpoint, save_model
from core.models.basicvsr import BasicVSR
from core.ssl import Plan
from core.ssl.export import ExportCheck, example_input, export_onnx, export_torchscript, write_report_h5

from .workers import Job

FORMATS = {"model": ("Pruned checkpoint", ".pth"), "torchscript": ("TorchScript", ".ts.pt"),
           "onnx": ("ONNX", ".onnx"), "h5": ("HDF5 report", ".h5")}


@dataclass
class ExportRequest:
    model: BasicVSR
    folder: Path
    stem: str
    formats: tuple[str, ...]
    plan: Plan | None
    meta: dict[str, Any]
    metrics: dict[str, Any]
    trace_shape: tuple[int, int, int] = (5, 64, 64)      # frames, height, width


@torch.no_grad()
def save_and_verify_model(model: BasicVSR, path: Path, meta: dict[str, Any]) -> ExportCheck:
    """save_model, then reload and compare outputs (tolerance 1e-6: the weights are the same floats)."""
    save_model(model, path, meta)
    reloaded = load_checkpoint(path).model.eval()
    x = example_input(3, 32, 32)
    model = model.cpu().eval()
    diff = float((reloaded(x) - model(x)).abs().max())
    return ExportCheck(path, "model", diff, 1e-6, f"reloaded as {reloaded.spec.variant}, "
                                                  f"{reloaded.count_parameters(include_spynet=False):,} parameters")


def run_export(job: Job, req: ExportRequest) -> list[tuple[str, ExportCheck | BaseException]]:
    """Export every requested format; one failure is reported for that format and does not stop the others."""
    req.folder.mkdir(parents=True, exist_ok=True)
    frames, height, width = req.trace_shape
    results: list[tuple[str, ExportCheck | BaseException]] = []
    for i, fmt in enumerate(req.formats):
        job.report(i, len(req.formats))
        path = req.folder / f"{req.stem}{FORMATS[fmt][1]}"
        try:
            if fmt == "model":
                check = save_and_verify_model(req.model, path, req.meta)
            elif fmt == "torchscript":
                check = export_torchscript(req.model, path, frames, height, width)
            elif fmt == "onnx":
                check = export_onnx(req.model, path, frames, height, width)
            else:
                check = write_report_h5(path, req.plan, req.metrics, req.meta)
            results.append((fmt, check))
        except Exception as exc:  # shown per format in the results list
            results.append((fmt, exc))
    job.report(len(req.formats), len(req.formats))
    return results

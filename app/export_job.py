"""The work behind Export, run in a background job: write each chosen file, then verify it.

Every format is written and verified by core's ``export_as``; this module only runs them in order and collects
the results, so one failing format does not stop the others.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.models.basicvsr import BasicVSR
from core.ssl import Plan
from core.ssl.export import ExportCheck, export_as

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


def run_export(job: Job, req: ExportRequest) -> list[tuple[str, ExportCheck | BaseException]]:
    """Export every requested format; one failure is reported for that format and does not stop the others."""
    req.folder.mkdir(parents=True, exist_ok=True)
    frames, height, width = req.trace_shape
    results: list[tuple[str, ExportCheck | BaseException]] = []
    for i, fmt in enumerate(req.formats):
        job.report(i, len(req.formats))
        path = req.folder / f"{req.stem}{FORMATS[fmt][1]}"
        try:
            check = export_as(fmt, req.model, path, frames=frames, height=height, width=width, plan=req.plan,
                              meta=req.meta, metrics=req.metrics)
            results.append((fmt, check))
        except Exception as exc:  # shown per format in the results list
            results.append((fmt, exc))
    job.report(len(req.formats), len(req.formats))
    return results

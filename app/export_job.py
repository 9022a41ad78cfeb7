"""The work behind Export, run in a background job: write each chosen file, verify it, then prove it on the clip.

Every format is written and verified by core's ``export_as`` and measured by ``prove_file`` (ms per frame here,
Y-PSNR on the current clip); this module only runs them in order and collects the results, so one failing
format does not stop the others.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.deploy import ExportCheck, export_as
from core.deploy.measure import FileProof, prove_file
from core.deploy.onnx_export import deploy_copy
from core.deploy.onnx_graph import export_step_graphs
from core.io.output import claim_output
from core.models.basicvsr import BasicVSR
from core.ssl import Plan

from .workers import Job

# key → (label, file suffix, export_as format, extra options)
FORMATS = {"model": ("Pruned checkpoint", ".pth", "model", {}),
           "onnx": ("ONNX fp32", ".onnx", "onnx", {"precision": "fp32"}),
           "onnx_int8": ("ONNX int8", ".int8.onnx", "onnx", {"precision": "int8"}),
           "onnx_int8_half_flow": ("ONNX int8, flow at half resolution", ".int8.half-flow.onnx", "onnx",
                                   {"precision": "int8", "flow": "half"}),
           "h5": ("HDF5 report", ".h5", "h5", {})}


@dataclass
class ExportRequest:
    model: BasicVSR
    folder: Path
    stem: str
    formats: tuple[str, ...]
    plan: Plan | None
    meta: dict[str, Any]
    metrics: dict[str, Any]
    lr: np.ndarray | None = None           # the current clip: int8 calibration and the per-file proof
    gt: np.ndarray | None = None
    max_drop: float = 0.3
    frame_size: tuple[int, int] = (180, 320)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportOutcome:
    key: str
    result: ExportCheck | BaseException
    proof: FileProof | BaseException | None = None


def run_export(job: Job, req: ExportRequest) -> list[ExportOutcome]:
    """Export every requested format; one failure is reported for that format and does not stop the others."""
    outcomes: list[ExportOutcome] = []
    traced: dict[str, Any] = {}              # flow resolution → its step graphs, traced once for all its files
    for i, key in enumerate(req.formats):
        job.report(i, len(req.formats))
        _, suffix, fmt, options = FORMATS[key]
        path = req.folder / f"{req.stem}{suffix}"
        try:
            claim_output(path)                    # refused before minutes of tracing, not after
            if fmt == "onnx":
                flow = options.get("flow", "full")
                if flow not in traced:
                    traced[flow] = export_step_graphs(deploy_copy(req.model, flow))
                options = {**options, "max_drop": req.max_drop, "calib": req.lr, "calib_gt": req.gt,
                           "graphs": traced[flow], **req.options}
            check = export_as(fmt, req.model, path, plan=req.plan, meta=req.meta, metrics=req.metrics,
                              frame_size=req.frame_size, **options)
        except Exception as exc:  # shown per format in the results list
            outcomes.append(ExportOutcome(key, exc))
            continue
        proof: FileProof | BaseException | None = None
        if req.lr is not None and fmt in ("model", "onnx"):
            try:
                proof = prove_file(path, req.model, req.lr, req.gt)
            except Exception as exc:  # the file is written and verified; only its proof failed
                proof = exc
        outcomes.append(ExportOutcome(key, check, proof))
    job.report(len(req.formats), len(req.formats))
    return outcomes

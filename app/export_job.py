"""The work behind Export, run in a background job: write each chosen file, verify it, then prove it on the clip.

Every format is written and verified by core's ``export_as`` and measured by ``prove_file`` (ms per frame here,
Y-PSNR on the current clip); this module only runs them in order and collects the results, so one failing
format does not stop the others. Beside each file's Y-PSNR the dense network's and bicubic upscaling's are
measured once on the same frames (``QualityBaseline``), and an int8 file is refused, as by the CLI, for a float
network worse than bicubic upscaling on the calibration frames (``check_worth_quantizing``: a raw cut).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.deploy import ExportCheck, export_as
from core.deploy.measure import FileProof, prove_file
from core.deploy.onnx_export import deploy_copy
from core.deploy.onnx_graph import export_step_graphs
from core.deploy.quantize import bicubic_upscale, check_calibration, check_worth_quantizing, y_psnr_frames
from core.io.frames import frames_to_tensor, tensor_to_frames
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


def target_paths(folder: Path, stem: str, formats: tuple[str, ...]) -> dict[str, Path]:
    """The file each format is written to."""
    return {key: folder / f"{stem}{FORMATS[key][1]}" for key in formats}


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
    dense: BasicVSR | None = None          # the dense network: its Y-PSNR on the proof frames beside each file's
    clip_name: str = ""
    overwrite: bool = False                # the user confirmed replacing existing files of this stem
    inputs: tuple[str | Path, ...] = ()    # files this export reads (never replaced, whatever ``overwrite``)


@dataclass(frozen=True)
class QualityBaseline:
    """Y-PSNR of the dense network and of bicubic upscaling on the frames every file is proven on.

    With GT all three (file, dense, bicubic) are against GT. Without GT a file's proof is its fidelity to the
    float network it came from, so quality is told against the dense output instead: the float pruned
    network's (``pruned``) and bicubic's."""

    frames: int
    clip: str
    reference: str                   # "GT" | "dense output"
    bicubic: float
    dense: float | None = None       # vs GT (with GT only)
    pruned: float | None = None      # the float pruned network vs the dense output (without GT only)

    @property
    def where(self) -> str:
        return f"frames 1–{self.frames} of {self.clip}" if self.clip else f"the first {self.frames} frames"


@dataclass
class ExportOutcome:
    key: str
    result: ExportCheck | BaseException
    proof: FileProof | BaseException | None = None
    baseline: QualityBaseline | None = None


def _sr(model: BasicVSR, lr: np.ndarray) -> np.ndarray:
    """uint8 SR frames of a private float copy of ``model`` (the app's networks are never touched)."""
    with torch.no_grad():
        return tensor_to_frames(deploy_copy(model)(frames_to_tensor(lr)))


def quality_baseline(req: ExportRequest, frames: int) -> QualityBaseline | None:
    """Dense and bicubic Y-PSNR on the first ``frames`` frames of the clip (what every file's proof runs on)."""
    if req.lr is None:
        return None
    lr = req.lr[:frames]
    bicubic = bicubic_upscale(lr)
    if req.gt is not None:
        gt = req.gt[:len(lr)]
        dense = y_psnr_frames(_sr(req.dense, lr), gt) if req.dense is not None else None
        return QualityBaseline(len(lr), req.clip_name, "GT", y_psnr_frames(bicubic, gt), dense=dense)
    if req.dense is None:
        return None
    dense_sr = _sr(req.dense, lr)
    return QualityBaseline(len(lr), req.clip_name, "dense output", y_psnr_frames(bicubic, dense_sr),
                           pruned=y_psnr_frames(_sr(req.model, lr), dense_sr))


def refuse_if_not_worth_quantizing(model: BasicVSR, lr: np.ndarray | None, gt: np.ndarray | None) -> None:
    """The CLI's rule for int8 (``core.deploy.command``): a float model worse than bicubic upscaling on the
    calibration frames is refused in one line (``NotWorthQuantizingError``) before anything is traced."""
    calib = check_calibration(lr)
    check_worth_quantizing(_sr(model, calib), calib, gt[:len(calib)] if gt is not None else None)


def run_export(job: Job, req: ExportRequest) -> list[ExportOutcome]:
    """Export every requested format; one failure is reported for that format and does not stop the others."""
    from core.deploy.measure import PROOF_FRAMES

    outcomes: list[ExportOutcome] = []
    traced: dict[str, Any] = {}              # flow resolution → its step graphs, traced once for all its files
    job.report(0, len(req.formats) + 1)
    try:
        baseline = quality_baseline(req, PROOF_FRAMES)
    except Exception:   # only the reference figures are missing; the files are still written and proven
        baseline = None
    int8_refusal: BaseException | None = None
    if any(FORMATS[key][3].get("precision") == "int8" for key in req.formats):
        try:
            refuse_if_not_worth_quantizing(req.model, req.lr, req.gt)
        except Exception as exc:  # shown in each int8 row; the other formats go on
            int8_refusal = exc
    paths = target_paths(req.folder, req.stem, req.formats)
    for i, key in enumerate(req.formats):
        job.report(i + 1, len(req.formats) + 1)
        _, _, fmt, options = FORMATS[key]
        path = paths[key]
        try:
            claim_output(path, inputs=req.inputs, overwrite=req.overwrite)    # refused before minutes of tracing
            if options.get("precision") == "int8" and int8_refusal is not None:
                raise int8_refusal
            if fmt == "onnx":
                flow = options.get("flow", "full")
                if flow not in traced:
                    traced[flow] = export_step_graphs(deploy_copy(req.model, flow))
                options = {**options, "max_drop": req.max_drop, "calib": req.lr, "calib_gt": req.gt,
                           "graphs": traced[flow], **req.options}
            check = export_as(fmt, req.model, path, plan=req.plan, meta=req.meta, metrics=req.metrics,
                              frame_size=req.frame_size, overwrite=req.overwrite, inputs=req.inputs, **options)
        except Exception as exc:  # shown per format in the results list
            outcomes.append(ExportOutcome(key, exc, baseline=baseline))
            continue
        proof: FileProof | BaseException | None = None
        if req.lr is not None and fmt in ("model", "onnx"):
            try:
                proof = prove_file(path, req.model, req.lr, req.gt)
            except Exception as exc:  # the file is written and verified; only its proof failed
                proof = exc
        outcomes.append(ExportOutcome(key, check, proof, baseline))
    job.report(len(req.formats) + 1, len(req.formats) + 1)
    return outcomes

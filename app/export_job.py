"""The work behind Export, run in a background job: write each chosen file, verify it, then prove it on the clip.

Every format is written and verified by core's ``export_as``; each written file is then proven on the current
clip by the app's one rule (``app.figures.measure``: every frame, streamed after a warm-up, the same Y-PSNR and
timing as Compare and Study). Beside each file stand the figures of the float network it came from, of the dense
network and of bicubic upscaling on the same frames — read from the app's ``Figures`` (what Compare showed), or
measured there once when Compare has not run. This module only runs them in order and collects the results, so
one failing format does not stop the others. An int8 file is refused, as by the CLI, for a float network worse
than bicubic upscaling (a raw cut): here by those same figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.deploy import ExportCheck, export_as
from core.events import Cancelled
from core.deploy.measure import FileProof
from core.deploy.onnx_export import deploy_copy
from core.deploy.onnx_graph import export_step_graphs
from core.deploy.quantize import NotWorthQuantizingError, check_calibration, check_worth_quantizing
from core.deploy.runtime import load_network
from core.io.frames import frames_to_tensor, tensor_to_frames
from core.io.output import claim_output
from core.models.basicvsr import BasicVSR
from core.ssl import Plan

from .child_work import ChildWork
from .clips import ClipPair
from .figures import BICUBIC, Figure, Figures, measure
from .frame_store import FrameStore
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
    lr: np.ndarray | None = None           # int8 calibration frames (the first frames of the current clip)
    gt: np.ndarray | None = None
    max_drop: float = 0.3
    frame_size: tuple[int, int] = (180, 320)
    options: dict[str, Any] = field(default_factory=dict)
    dense: BasicVSR | None = None          # the dense network: its figure on the clip beside each file's
    clip_name: str = ""
    overwrite: bool = False                # the user confirmed replacing existing files of this stem
    inputs: tuple[str | Path, ...] = ()    # files this export reads (never replaced, whatever ``overwrite``)
    clip: ClipPair | None = None           # the current clip: every file is proven on all its frames
    figures: Figures | None = None         # the app's figures (``AppState.figures``)


@dataclass(frozen=True)
class QualityBaseline:
    """The figures (``app.figures``) of the float network exported, the dense network and bicubic upscaling on
    the frames every file is proven on: all frames of the clip.

    With GT all are against GT; without GT against the dense network's output (the dense network itself is
    then the reference and has no figure, only a time)."""

    frames: int
    clip: str
    reference: str                   # "GT" | "dense output"
    bicubic: float
    dense: float | None = None       # vs GT (with GT only)
    pruned: float | None = None      # the float network exported
    figures: dict[str, Figure] = field(default_factory=dict, compare=False)     # "pruned", "dense", "bicubic"

    @property
    def where(self) -> str:
        return f"all {self.frames} frames of {self.clip}" if self.clip else f"all {self.frames} frames"


@dataclass
class ExportOutcome:
    key: str
    result: ExportCheck | BaseException
    proof: FileProof | BaseException | None = None
    baseline: QualityBaseline | None = None
    contended: tuple[str, ...] = ()        # the app's jobs that ran while the proof's time was measured


def _sr(model: BasicVSR, lr: np.ndarray) -> np.ndarray:
    """uint8 SR frames of a private float copy of ``model`` (the app's networks are never touched)."""
    with torch.no_grad():
        return tensor_to_frames(deploy_copy(model)(frames_to_tensor(lr)))


def quality_baseline(req: ExportRequest, progress=None) -> tuple[QualityBaseline | None, FrameStore | None]:
    """The figures beside every file (from ``req.figures``, measured there if missing) and, without GT, the dense
    output every file is scored against."""
    clip, figures = req.clip, req.figures
    if clip is None or figures is None:
        return None, None
    if clip.gt is None and req.dense is None:
        return None, None
    dense_frames = figures.dense_output(clip, req.dense, progress) if clip.gt is None else None
    got = figures.ensure(clip, {"dense": req.dense, "pruned": req.model}, req.dense, bicubic=True,
                         dense_frames=dense_frames, progress=progress)
    reference = "GT" if clip.gt is not None else "dense output"
    dense = got.get("dense")
    return QualityBaseline(len(clip), clip.name, reference, got[BICUBIC].psnr,
                           dense=dense.psnr if dense is not None and clip.gt is not None else None,
                           pruned=got["pruned"].psnr, figures=got), dense_frames


def prove(path: Path, clip: ClipPair, dense_frames: FrameStore | None,
          network: Figure | None = None) -> tuple[FileProof, tuple[str, ...]]:
    """The written file, run on every frame of the clip by the app's one rule (``app.figures.measure``), and the
    app's jobs that ran while its time was measured (``app.alone``: it waits for them first).

    ``network``: the figure of the float network a checkpoint holds; the checkpoint is that network, run by the
    same engine, so its time is that figure's (one time per model, not a second measurement of it)."""
    figure = measure(path.name, load_network(path), clip, dense_frames=dense_frames)
    timed = network if network is not None and network.ms_per_frame is not None else figure
    return FileProof(timed.ms_per_frame, figure.psnr if figure.psnr is not None else float("nan"),
                     "GT" if figure.reference == "GT" else "dense output", figure.frames, figure.size), timed.contended


def refuse_if_not_worth_quantizing(model: BasicVSR, lr: np.ndarray | None, gt: np.ndarray | None,
                                   baseline: QualityBaseline | None = None) -> None:
    """The CLI's rule for int8 (``core.deploy.command``): a float model worse than bicubic upscaling is refused in
    one line (``NotWorthQuantizingError``) before anything is traced. With the app's figures (``baseline``) the
    rule reads them — the figures Compare shows — else it is the CLI's check on the calibration frames."""
    calib = check_calibration(lr)
    if baseline is not None and baseline.pruned is not None:
        if not baseline.pruned >= baseline.bicubic:           # NaN too
            vs = "vs GT" if baseline.reference == "GT" else "vs the dense output"
            raise NotWorthQuantizingError(
                f"the model is not worth quantizing: on {baseline.where} its output scores {baseline.pruned:.2f} dB "
                f"Y-PSNR ({vs}), bicubic upscaling {baseline.bicubic:.2f} dB; it is far from the dense network it "
                "was cut from (a raw cut?): reconstruct it or train it first, then export int8")
        return
    check_worth_quantizing(_sr(model, calib), calib, gt[:len(calib)] if gt is not None else None)


def run_export(job: Job, req: ExportRequest) -> list[ExportOutcome]:
    """Export every requested format; one failure is reported for that format and does not stop the others."""
    outcomes: list[ExportOutcome] = []
    traced: dict[str, Any] = {}              # flow resolution → its step graphs, traced once for all its files
    job.report(0, len(req.formats) + 1)
    try:
        baseline, dense_frames = quality_baseline(req)
    except Cancelled:
        raise
    except Exception:   # only the reference figures are missing; the files are still written and proven
        baseline, dense_frames = None, None
    int8_refusal: BaseException | None = None
    if any(FORMATS[key][3].get("precision") == "int8" for key in req.formats):
        try:
            refuse_if_not_worth_quantizing(req.model, req.lr, req.gt, baseline)
        except Exception as exc:  # shown in each int8 row; the other formats go on
            int8_refusal = exc
    paths = target_paths(req.folder, req.stem, req.formats)
    with ChildWork(job) as child:
        for i, key in enumerate(req.formats):
            outcomes.append(_export_one(job, req, key, paths[key], child, traced, baseline, dense_frames,
                                        int8_refusal, (i + 1, len(req.formats) + 1)))
    job.report(len(req.formats) + 1, len(req.formats) + 1)
    return outcomes


def _export_one(job: Job, req: ExportRequest, key: str, path: Path, child: ChildWork, traced: dict[str, Any],
                baseline: QualityBaseline | None, dense_frames: FrameStore | None,
                int8_refusal: BaseException | None, step: tuple[int, int]) -> ExportOutcome:
    """One format written, verified and proven; ONNX files are traced and written in ``child`` (a process of
    its own: the exporter holds the GIL for up to a second at a time, which froze the window)."""
    job.report(*step)
    _, _, fmt, options = FORMATS[key]
    try:
        claim_output(path, inputs=req.inputs, overwrite=req.overwrite)    # refused before minutes of tracing
        if options.get("precision") == "int8" and int8_refusal is not None:
            raise int8_refusal
        model = req.model
        if fmt == "onnx":
            flow = options.get("flow", "full")
            if flow not in traced:
                traced[flow] = child.call(export_step_graphs, deploy_copy(req.model, flow))
            options = {**options, "max_drop": req.max_drop, "calib": req.lr, "calib_gt": req.gt,
                       "graphs": traced[flow], **req.options}
            model = deploy_copy(req.model)
        write = child.call if fmt == "onnx" else _here
        check = write(export_as, fmt, model, path, plan=req.plan, meta=req.meta, metrics=req.metrics,
                      frame_size=req.frame_size, overwrite=req.overwrite, inputs=req.inputs, **options)
    except Cancelled:
        raise
    except Exception as exc:  # shown per format in the results list
        return ExportOutcome(key, exc, baseline=baseline)
    proof: FileProof | BaseException | None = None
    contended: tuple[str, ...] = ()
    if req.clip is not None and fmt in ("model", "onnx"):
        try:
            network = baseline.figures.get("pruned") if baseline is not None and fmt == "model" else None
            proof, contended = prove(path, req.clip, dense_frames, network)
        except Cancelled:
            raise
        except Exception as exc:  # the file is written and verified; only its proof failed
            proof = exc
    return ExportOutcome(key, check, proof, baseline, contended)


def _here(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``ChildWork.call``'s counterpart for the quick formats, run in the job's own thread."""
    return fn(*args, **kwargs)

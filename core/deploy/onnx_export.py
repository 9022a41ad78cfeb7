"""``export --format onnx``: the whole-clip ONNX file (any frames, height, width), fp32 or int8, verified after
writing with onnxruntime at clip shapes never seen at export, before it is moved into place."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from ..errors import UserError
from ..io.frames import frames_to_tensor, tensor_to_frames
from ..io.output import claim_output, staged_file
from ..models.basicvsr import BasicVSR
from ..models.spynet import FLOW_RESOLUTIONS
from .check import ExportCheck, Int8OverBudget
from .onnx_graph import PRECISIONS, assemble_clip_model, base_metadata, export_step_graphs
from .runtime import OnnxClip, read_onnx

# (frames, height, width) of the LR clips every file is checked at: odd sizes, sizes below SpyNet's 64-pixel
# floor, sizes it resizes to a multiple of 32 with an odd quotient (the padded coarsest level), frame counts 2-4.
VERIFY_SHAPES = ((2, 19, 23), (3, 36, 70), (4, 97, 45))
FP32_TOLERANCE = 1e-4


class ExportError(UserError):
    """An export that failed its check after writing (nothing is left on disk)."""


def deploy_copy(model: BasicVSR, flow: str = "full") -> BasicVSR:
    """A private float32 CPU copy in the plain layout: exports trace this, never the caller's (shared) model.

    ``flow``: the SpyNet resolution the copy runs at (``FLOW_RESOLUTIONS``; "full" is the network as trained).
    """
    if flow not in FLOW_RESOLUTIONS:
        raise UserError(f"unknown flow resolution {flow!r} (use one of: {', '.join(FLOW_RESOLUTIONS)})")
    out = copy.deepcopy(model).cpu().float().eval().to(memory_format=torch.contiguous_format)
    out.spynet.set_resolution(flow)
    return out


def _clip_runner(model: BasicVSR, metadata: Mapping[str, str]):
    def run(graphs: Mapping[str, Any], frames: np.ndarray) -> np.ndarray:
        clip = OnnxClip(assemble_clip_model(model, graphs, metadata))
        return tensor_to_frames(clip(frames_to_tensor(frames)))
    return run


def moving_clip(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A random clip that moves like video: a smooth random scene (plus fine noise) panned by 1-2 px per frame.

    Why not white noise: SpyNet's flow between two unrelated noise frames is chaotic, and there the float
    rounding differences of two correct runtimes are amplified 10x through warping; a video never looks so.
    """
    g = torch.Generator().manual_seed(seed)
    pad = 2 * frames
    coarse = torch.rand(1, 3, max((height + pad) // 6, 2), max((width + pad) // 6, 2), generator=g)
    scene = torch.nn.functional.interpolate(coarse, size=(height + pad, width + pad), mode="bicubic",
                                            align_corners=False)
    scene = (scene + 0.03 * torch.randn(scene.shape, generator=g)).clamp(0, 1)
    return torch.stack([scene[0, :, 2 * i:2 * i + height, i:i + width] for i in range(frames)])[None]


@torch.no_grad()
def max_diff_at(run, model: BasicVSR, shapes: Iterable[tuple[int, int, int]], seed: int = 0) -> float:
    """Largest |run(x) - model(x)| over moving clips of ``shapes`` (frames, h, w)."""
    worst = 0.0
    for i, (t, h, w) in enumerate(shapes):
        x = moving_clip(t, h, w, seed + i)
        worst = max(worst, float((run(x) - model(x)).abs().max()))
    return worst


@torch.no_grad()
def export_onnx(model: BasicVSR, path: str | Path, *, precision: str = "fp32", calib: np.ndarray | None = None,
                calib_gt: np.ndarray | None = None, max_drop: float = 0.3, meta: Mapping[str, Any] | None = None,
                overwrite: bool = False, inputs: Iterable[str | Path] = (),
                shapes: tuple[tuple[int, int, int], ...] = VERIFY_SHAPES,
                graphs: Mapping[str, Any] | None = None, flow: str = "full") -> ExportCheck:
    """Write ``model`` as one ONNX file (steps in Scan loops) and verify it before it is moved into place.

    fp32: the file must match PyTorch (run at the same ``flow`` resolution) to ``FP32_TOLERANCE`` at every shape
    in ``shapes``. int8: calibrated on ``calib`` (uint8 (T, h, w, 3) LR frames), layers kept float until the
    Y-PSNR drop is within ``max_drop`` dB (measured vs ``calib_gt`` when given, predicted without it); the drop
    is counted from ``model`` as trained (full flow), so a "half" flow's cost is inside the budget. The written file must run at every shape.
    ``graphs``: the step graphs of this very model at this ``flow`` from ``export_step_graphs``, when already
    traced (one trace for an fp32 and an int8 file).

    One line, each part once: the request checked and the output claimed, the step graphs traced, (int8) the
    steps quantized by the guard, the whole-clip graph assembled, the file written, read back and checked, the
    verdict.
    """
    calib = _checked_request(precision, calib)
    inputs = tuple(inputs)
    claim_output(path, inputs=inputs, overwrite=overwrite)
    deployed = deploy_copy(model, flow)
    steps = dict(graphs) if graphs is not None else export_step_graphs(deployed)
    quant = _quantized(model, deployed, steps, calib, calib_gt, max_drop, meta, flow) if precision == "int8" else None
    proto = _clip_graph(deployed, steps, precision, meta, quant, max_drop, flow)
    diff = _write_checked(proto, path, deployed, shapes, quant, max_drop, flow, inputs=inputs, overwrite=overwrite)
    return _verdict(proto, path, deployed, diff, shapes, quant, max_drop, flow)


def _checked_request(precision: str, calib: np.ndarray | None) -> np.ndarray | None:
    """A precision a file of ours declares, and for int8 frames fit to calibrate on: refused before any work."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (use one of: {', '.join(PRECISIONS)})")
    if precision != "int8":
        return calib
    from .quantize import check_calibration

    return check_calibration(calib)


def _quantized(trained: BasicVSR, deployed: BasicVSR, steps: Mapping[str, Any], calib: np.ndarray,
               calib_gt: np.ndarray | None, max_drop: float, meta: Mapping[str, Any] | None, flow: str) -> Any:
    """The int8 guard's ``QuantResult`` for the step graphs: each candidate runs as a whole-clip file, and its drop
    is counted from ``trained`` at full flow (a half flow's own cost inside the budget)."""
    from .quantize import estimated_quality, quantize_steps

    as_trained = deploy_copy(trained)

    def run_trained(frames: np.ndarray) -> np.ndarray:
        return tensor_to_frames(as_trained(frames_to_tensor(frames)))

    reference = None if flow == "full" else run_trained(calib)
    quality = None if calib_gt is not None else estimated_quality(run_trained, calib)
    run_float = _clip_runner(deployed, base_metadata(deployed, "fp32", meta, flow=flow))
    return quantize_steps(steps, deployed.spec.bidirectional, deployed.num_feat, calib, run_float, max_drop, calib_gt,
                          reference, quality)


def _clip_graph(deployed: BasicVSR, steps: Mapping[str, Any], precision: str, meta: Mapping[str, Any] | None,
                quant: Any, max_drop: float, flow: str) -> Any:
    """The whole-clip model of the (quantized) steps, with the metadata every file of ours carries."""
    if quant is None:
        return assemble_clip_model(deployed, steps, base_metadata(deployed, precision, meta, (), flow))
    metadata = base_metadata(deployed, precision, meta, quant.kept_float, flow)
    metadata.update(quant.metadata(max_drop))
    return assemble_clip_model(deployed, quant.graphs, metadata)


def _write_checked(proto: Any, path: str | Path, deployed: BasicVSR, shapes: tuple[tuple[int, int, int], ...],
                   quant: Any, max_drop: float, flow: str, *, inputs: tuple[str | Path, ...],
                   overwrite: bool) -> float:
    """Write ``proto`` under the output rule; before the move the written file is read back (``read_onnx``: every
    check of a file of ours) and run at every shape. Returns its largest difference from PyTorch."""
    found: dict[str, float] = {}

    def verify(tmp: Path) -> None:
        written, _ = read_onnx(tmp)
        found["diff"] = diff = max_diff_at(OnnxClip(written), deployed, shapes)
        if quant is None:
            if not diff <= FP32_TOLERANCE:
                raise ExportError(f"the written ONNX file differs from PyTorch by {diff:.2e} "
                                  f"(tolerance {FP32_TOLERANCE:.0e}); nothing was written")
            return
        if not np.isfinite(diff):       # int8: runs at every shape; the size of the difference is judged by the drop
            raise ExportError("the written int8 ONNX file gives non-finite output; nothing was written")
        if not quant.judged_drop <= max_drop:
            raise Int8OverBudget(f"int8 over budget: the guard judged a {quant.judged_drop:.2f} dB Y-PSNR drop with "
                                 f"{len(quant.kept_float)} layers kept float (budget {max_drop:.2f} dB"
                                 f"{', half flow included' if flow != 'full' else ''}); nothing was written: raise "
                                 f"--max-drop, or export fp32{' or full flow' if flow != 'full' else ''}")

    with staged_file(path, inputs=inputs, overwrite=overwrite, verify=verify) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return found["diff"]


def _verdict(proto: Any, path: str | Path, deployed: BasicVSR, diff: float, shapes: tuple[tuple[int, int, int], ...],
             quant: Any, max_drop: float, flow: str) -> ExportCheck:
    detail = f"{deployed.spec.variant}, opset {proto.opset_import[0].version}, dynamic frames/height/width"
    if flow != "full":
        detail += f", flow at {flow} resolution"
    if quant is None:
        return ExportCheck(Path(path), "onnx", diff, FP32_TOLERANCE, detail, "fp32", shapes, flow=flow)
    return ExportCheck(Path(path), "onnx", diff, None, f"{detail}, drop vs {quant.reference}", "int8", shapes,
                       max_drop=max_drop, kept_float=quant.kept_float, flow=flow, **quant.check_fields())

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
from ..io.output import staged_file
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
    """
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (use one of: {', '.join(PRECISIONS)})")
    from .quantize import check_calibration, estimated_quality, quantize_steps

    inputs = tuple(inputs)
    if precision == "int8":
        calib = check_calibration(calib)
    from ..io.output import claim_output

    claim_output(path, inputs=inputs, overwrite=overwrite)
    trained = model
    model = deploy_copy(model, flow)
    graphs = dict(graphs) if graphs is not None else export_step_graphs(model)
    kept: tuple[str, ...] = ()
    quant = None
    if precision == "int8":
        float_meta = base_metadata(model, "fp32", meta, flow=flow)
        as_trained = deploy_copy(trained)

        def run_trained(frames: np.ndarray) -> np.ndarray:
            return tensor_to_frames(as_trained(frames_to_tensor(frames)))

        reference = None if flow == "full" else run_trained(calib)
        quality = None if calib_gt is not None else estimated_quality(run_trained, calib)
        quant = quantize_steps(graphs, model.spec.bidirectional, model.num_feat, calib,
                               _clip_runner(model, float_meta), max_drop, calib_gt, reference, quality)
        graphs, kept = quant.graphs, quant.kept_float
    metadata = base_metadata(model, precision, meta, kept, flow)
    if quant is not None:
        metadata.update(quant.metadata(max_drop))
    proto = assemble_clip_model(model, graphs, metadata)
    found: dict[str, float] = {}

    def verify(tmp: Path) -> None:
        written, _ = read_onnx(tmp)
        clip = OnnxClip(written)
        if precision == "fp32":
            found["diff"] = max_diff_at(clip, model, shapes)
            if not found["diff"] <= FP32_TOLERANCE:
                raise ExportError(f"the written ONNX file differs from PyTorch by {found['diff']:.2e} "
                                  f"(tolerance {FP32_TOLERANCE:.0e}); nothing was written")
            return
        found["diff"] = max_diff_at(clip, model, shapes)       # int8: runs at every shape; the size of the
        if not np.isfinite(found["diff"]):                      # difference is judged by the drop below
            raise ExportError("the written int8 ONNX file gives non-finite output; nothing was written")
        if not quant.judged_drop <= max_drop:
            raise Int8OverBudget(f"int8 over budget: the guard judged a {quant.judged_drop:.2f} dB Y-PSNR drop with "
                              f"{len(quant.kept_float)} layers kept float (budget {max_drop:.2f} dB"
                              f"{', half flow included' if flow != 'full' else ''}); nothing was written: raise "
                              f"--max-drop, or export fp32{' or full flow' if flow != 'full' else ''}")

    with staged_file(path, inputs=inputs, overwrite=overwrite, verify=verify) as tmp:
        tmp.write_bytes(proto.SerializeToString())
    detail = f"{model.spec.variant}, opset {proto.opset_import[0].version}, dynamic frames/height/width"
    if flow != "full":
        detail += f", flow at {flow} resolution"
    if quant is None:
        return ExportCheck(Path(path), "onnx", found["diff"], FP32_TOLERANCE, detail, "fp32", shapes, flow=flow)
    return ExportCheck(Path(path), "onnx", found["diff"], None, f"{detail}, drop vs {quant.reference}", "int8",
                       shapes, max_drop=max_drop, kept_float=kept, flow=flow, **quant.check_fields())

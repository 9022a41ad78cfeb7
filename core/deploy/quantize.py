"""int8 post-training static quantization of the step graphs (onnxruntime QDQ, per-channel weights), with an
accuracy guard that keeps the costliest layers in float until the quality drop is within a budget.

How a layer's cost is measured (not guessed): the step graphs are quantized whole once, run on the calibration
feeds with every convolution's output exposed, and each conv's output is compared with the float graph's: the
noise a layer adds is its output error minus the error already in its input (both relative, in the energy
domain). Layers are then kept in float in that order, 1, 2, 4, 8 ... at a time, until the Y-PSNR drop of the
whole clip against the float model is within ``max_drop``; a bisection then trims the count back towards the
fewest layers that fit (each float layer costs int8 speed).

The drop is measured against ground truth when the caller has it. Without GT it is PREDICTED: the int8 error
(its fidelity to the float output, measured) and the float model's own error against GT add up as independent
errors in the SR frames (``check.implied_drop``); measured on five real clips, that held to within 0.1 dB of the
real drop when the float model's quality against GT is known. That quality is estimated from the calibration
frames themselves (``estimated_quality``): downscaled x4 they are a clip whose GT is known (the frames), and the
float model's Y-PSNR there, plus ``LOW_SCALE_BIAS_DB``, estimates its Y-PSNR at full scale. The LR-consistency
reference used before (the SR output downscaled must reproduce its input) charged drops that did not happen —
about 1 dB judged for 0.0-0.2 measured — because there the float model is near perfect and any error looks large.

A drop is only meaningful when the float model is good: against a float model that makes noise, an int8 file
"drops" by -11 dB. So with GT the file is judged by its FIDELITY to the float model too, turned into the drop
such an error costs a model of the float one's quality, and the measured drop counts by its size
(``check.judged_drop``): a negative drop never fits a budget. And a float model worse than bicubic upscaling on
the calibration frames is not quantized at all (``check_worth_quantizing``): it is far from the network it was
cut from, and its int8 file would be as useless.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from ..data.degrade import bi_degrade, imresize
from ..errors import UserError
from ..metrics import bicubic_upscale, y_psnr_clip, y_psnr_frames
from ..data.calib import CalibrationError, check_frames
from .check import Int8OverBudget, implied_drop, judged_drop, within_budget  # noqa: F401  (the guard's decision)
from .int8_work import int8_work_dir

MIN_CALIB_FRAMES = 3
MIN_CALIB_SIDE = 32
MAX_CALIB_FRAMES = 8
QUANT_OPS = ["Conv", "Relu", "LeakyRelu"]


class NotWorthQuantizingError(UserError):
    """A float model worse than bicubic upscaling on the calibration frames: its int8 file would be useless."""


@dataclass(frozen=True)
class QuantResult:
    graphs: dict[str, Any]            # branch → quantized step ModelProto
    kept_float: tuple[str, ...]       # layer names left in float
    drop: float                       # Y-PSNR of the float model minus the int8 one (dB), as measured
    reference: str                    # "GT", or how the drop was predicted without it
    trials: tuple[tuple[int, float], ...]   # (layers kept float, judged drop) for every trial
    costs: dict[str, float]           # layer → measured relative error energy its quantization adds (measured
                                      # only when the all-int8 file did not fit)
    fidelity_db: float = math.nan     # Y-PSNR of the int8 output against the float output (SR frames)
    fidelity_lr_db: float = math.nan  # the same after the ×4 bicubic downscale (LR-consistency direction)
    judged_drop: float = math.nan     # what the guard held against the budget (check.judged_drop)

    def metadata(self, max_drop: float) -> dict[str, str]:
        """The ``ssl_vsr.*`` entries an int8 file records about its guard."""
        return {"ssl_vsr.int8_drop_db": f"{self.drop:.4f}", "ssl_vsr.int8_reference": self.reference,
                "ssl_vsr.max_drop_db": f"{max_drop}", "ssl_vsr.int8_fidelity_db": f"{self.fidelity_db:.4f}",
                "ssl_vsr.int8_fidelity_lr_db": f"{self.fidelity_lr_db:.4f}",
                "ssl_vsr.int8_judged_drop_db": f"{self.judged_drop:.4f}"}

    def check_fields(self) -> dict[str, Any]:
        """The guard's numbers as ``ExportCheck`` fields."""
        return {"psnr_drop": self.drop, "fidelity_db": self.fidelity_db, "fidelity_lr_db": self.fidelity_lr_db,
                "judged_drop": self.judged_drop}


def check_calibration(frames: np.ndarray | None, what: str = "calibration clip") -> np.ndarray:
    """uint8 (T, h, w, 3) frames fit to calibrate, at most MAX_CALIB_FRAMES of them; one-line refusals."""
    if frames is None:
        raise CalibrationError("int8 needs calibration frames: give --calib CLIP (a frame folder or video)")
    return check_frames(frames, what, MIN_CALIB_FRAMES, MIN_CALIB_SIDE, "calibration")[:MAX_CALIB_FRAMES]


# -- feeds ------------------------------------------------------------------------------------------------------
def record_feeds(run_step: Callable[[str, dict[str, np.ndarray]], list[np.ndarray]], bidirectional: bool,
                 num_feat: int, lr: np.ndarray) -> dict[str, list[dict[str, np.ndarray]]]:
    """The inputs each step graph sees over the clip ``lr`` (T, 1, 3, h, w) float32, in running order."""
    t = len(lr)
    zeros = np.zeros((1, num_feat, *lr.shape[-2:]), np.float32)
    feeds: dict[str, list[dict[str, np.ndarray]]] = {"forward": []}
    h_b: list[np.ndarray | None] = [None] * t
    if bidirectional:
        feeds["backward"] = []
        h = zeros
        for i in range(t - 1, -1, -1):
            feed = {"x_t": lr[i], "x_next": lr[min(i + 1, t - 1)], "h_next": h}
            feeds["backward"].append(feed)
            h = h_b[i] = run_step("backward", feed)[0]
    h = zeros
    for i in range(t):
        feed = {"x_t": lr[i], "x_prev": lr[max(i - 1, 0)], "h_prev": h}
        if bidirectional:
            feed["h_b"] = h_b[i]
        feeds["forward"].append(feed)
        h = run_step("forward", feed)[1]
    return feeds


def step_feeds(graphs: Mapping[str, Any], bidirectional: bool, num_feat: int,
               frames: np.ndarray) -> dict[str, list[dict[str, np.ndarray]]]:
    """``record_feeds`` of the float step ``graphs`` (onnxruntime) over uint8 LR ``frames`` (T, h, w, 3): what
    quantization calibrates on."""
    lr = np.ascontiguousarray(frames.transpose(0, 3, 1, 2)[:, None].astype(np.float32) / 255.0)
    sessions = {name: _session(g) for name, g in graphs.items()}
    outs = {name: [o.name for o in g.graph.output] for name, g in graphs.items()}
    return record_feeds(lambda name, feed: sessions[name].run(outs[name], feed), bidirectional, num_feat, lr)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over recorded feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


# -- layers -----------------------------------------------------------------------------------------------------
def conv_layers(model: Any) -> dict[str, str]:
    """Conv node name → layer name (its weight's module path, e.g. ``forward_trunk.main.2.3.conv1``)."""
    inits = {i.name for i in model.graph.initializer}
    out = {}
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in inits:
            name = node.input[1].removeprefix("flow/").removeprefix("model.").removesuffix(".weight")
            out[node.name] = name
    return out


def _session(proto: Any) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _with_outputs(proto: Any, names: Sequence[str]) -> Any:
    from onnx import helper

    out = type(proto)()
    out.CopyFrom(proto)
    out.graph.output.extend(helper.make_empty_tensor_value_info(n) for n in names)
    return out


def _measured_output(graph: Any, node: Any, produced: set[str]) -> str | None:
    """The tensor that shows ``node``'s quantization error in both graphs: its output, or, where the quantizer
    fused a following ReLU into the conv (QDQ does: the pre-activation tensor is gone), that activation's output."""
    out = node.output[0]
    if out in produced:
        return out
    consumers = [n for n in graph.graph.node if out in n.input]
    if len(consumers) == 1 and consumers[0].op_type in ("Relu", "LeakyRelu") and consumers[0].output[0] in produced:
        return consumers[0].output[0]
    return None


def layer_costs(float_graph: Any, quant_graph: Any, feeds: Sequence[dict[str, np.ndarray]]) -> dict[str, float]:
    """Layer → the relative error energy its quantization adds (output error minus input error), measured."""
    layers = conv_layers(float_graph)
    nodes = {n.name: n for n in float_graph.graph.node if n.name in layers}
    produced = {o for n in quant_graph.graph.node for o in n.output} | {i.name for i in quant_graph.graph.input}
    ends = {name: (n.input[0] if n.input[0] in produced else None, _measured_output(float_graph, n, produced))
            for name, n in nodes.items()}
    tensors = sorted({t for pair in ends.values() for t in pair if t is not None})
    fs, qs = _session(_with_outputs(float_graph, tensors)), _session(_with_outputs(quant_graph, tensors))
    err: dict[str, list[float]] = {t: [] for t in tensors}
    for feed in feeds:
        fo = dict(zip(tensors, fs.run(tensors, feed)))
        qo = dict(zip(tensors, qs.run(tensors, feed)))
        for t in tensors:
            err[t].append(float(np.sum((fo[t] - qo[t]) ** 2) / max(np.sum(fo[t] ** 2), 1e-12)))
    mean = {t: float(np.mean(v)) for t, v in err.items()}
    costs = {}
    for node_name, (source, result) in ends.items():
        if result is not None:
            cost = mean[result] - (mean[source] if source is not None else 0.0)
            costs[layers[node_name]] = max(costs.get(layers[node_name], 0.0), cost)
    return costs


# -- quantization -----------------------------------------------------------------------------------------------
def quantize_graph(graph: Any, feeds: Sequence[dict[str, np.ndarray]], work: Path, tag: str,
                   exclude_nodes: Sequence[str] = ()) -> Any:
    """``graph`` quantized as every int8 file of ours is (QDQ, per-channel symmetric int8 weights, uint8
    activations, MinMax ranges over ``feeds``), ``exclude_nodes`` left float; ``work`` is a private scratch folder
    (the calibration ranges are cached there under ``tag`` for the guard's next attempt)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    src, dst, cache = work / f"{tag}.onnx", work / f"{tag}.q.onnx", work / f"{tag}.ranges.json"
    if not src.exists():
        onnx.save(graph, str(src))   # scratch: a private temporary folder, not an output
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # ORT warns via the root logger
    quantize_static(str(src), str(dst), _Reader(feeds), quant_format=QuantFormat.QDQ, op_types_to_quantize=QUANT_OPS,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(exclude_nodes), calibrate_method=CalibrationMethod.MinMax,
                    calibration_cache_path=str(cache), extra_options={"WeightSymmetric": True})
    return onnx.load(str(dst))


def _quantize(graph: Any, feeds: Sequence[dict[str, np.ndarray]], exclude_layers: set[str], work: Path,
              tag: str) -> Any:
    """``quantize_graph`` with the convs of ``exclude_layers`` (layer names) left float."""
    exclude = [node for node, layer in conv_layers(graph).items() if layer in exclude_layers]
    return quantize_graph(graph, feeds, work, tag, exclude)


def consistency_reference(lr_frames: np.ndarray) -> Callable[[np.ndarray], float]:
    """Scores SR frames by how well their ×4 bicubic downscale reproduces the LR input (Y-PSNR)."""
    def score(sr: np.ndarray) -> float:
        return y_psnr_frames(bi_degrade(sr), lr_frames)
    return score


def _gt_for(frames: np.ndarray, gt: np.ndarray | None, what: str = "the calibration GT") -> np.ndarray | None:
    if gt is None:
        return None
    if len(gt) < len(frames):
        raise CalibrationError(f"{what} has {len(gt)} frames for {len(frames)} LR frames")
    gt = gt[:len(frames)]
    want = (len(frames), 4 * frames.shape[1], 4 * frames.shape[2], 3)
    if gt.shape != want:
        raise CalibrationError(f"{what} frames are {gt.shape[1]}x{gt.shape[2]} (height x width); the x4 output "
                               f"of the {frames.shape[1]}x{frames.shape[2]} calibration frames is "
                               f"{want[1]}x{want[2]}")
    return gt


def check_worth_quantizing(float_sr: np.ndarray, frames: np.ndarray, gt: np.ndarray | None = None) -> float:
    """Refuse (``NotWorthQuantizingError``, one line) a float model whose output ``float_sr`` on the calibration
    ``frames`` is worse than bicubic upscaling of them: Y-PSNR vs ``gt`` when given, else LR-consistency Y-PSNR.
    Such a model is far from the dense network it came from (a raw cut), and no int8 budget means anything for
    it. Returns the float model's margin over bicubic (dB)."""
    frames = check_calibration(frames)
    gt = _gt_for(frames, gt)
    score = (lambda sr: y_psnr_frames(sr, gt)) if gt is not None else consistency_reference(frames)
    reference = "vs the calibration GT" if gt is not None else "LR consistency"
    ours, bicubic = score(float_sr[:len(frames)]), score(bicubic_upscale(frames))
    if not ours >= bicubic:          # NaN too
        raise NotWorthQuantizingError(
            f"the model is not worth quantizing: on the calibration frames its output scores {ours:.2f} dB Y-PSNR "
            f"({reference}), bicubic upscaling {bicubic:.2f} dB; it is far from the dense network it was cut "
            f"from (a raw cut?): reconstruct it (prune --calib) or train it first, then export int8")
    return ours - bicubic


def fewest_float(layers: int, attempt: Callable[[int], tuple[Any, float]], max_drop: float,
                 start: tuple[Any, float]) -> tuple[int, Any, float, list[tuple[int, float]]]:
    """How many of the ranked layers to keep float: 1, 2, 4 ... until ``attempt(n)``'s drop fits ``max_drop``
    (or all are float), then a bisection back towards the fewest that fit, to a quarter of the count (each float
    layer costs int8 speed). ``start`` is the all-int8 attempt. Returns (count, result, drop, trials).
    A drop fits when ``within_budget`` says so: a negative one by its size."""
    result, drop = start
    trials: list[tuple[int, float]] = []
    failed = count = 0
    k = 1
    while not within_budget(drop, max_drop) and count < layers:
        failed, count = count, min(k, layers)
        result, drop = attempt(count)
        trials.append((count, drop))
        k *= 2
    while within_budget(drop, max_drop) and count - failed > max(1, count // 4):
        mid = (failed + count) // 2
        r, d = attempt(mid)
        trials.append((mid, d))
        if within_budget(d, max_drop):
            count, result, drop = mid, r, d
        else:
            failed = mid
    return count, result, drop, trials


def _downscaled(sr: np.ndarray) -> np.ndarray:
    """SR frames ×4 down, bicubic as ``bi_degrade`` but neither rounded nor clipped (float, [0, 255] scale): the
    consistency score rounds both outputs' downscales afresh, so what int8 adds there is the difference of the
    unrounded ones (rounded ones would count two roundings' flips as int8 error)."""
    return imresize(sr.astype(np.float32) / 255.0, 0.25) * 255.0


@dataclass(frozen=True)
class _Measured:
    """One candidate int8 model's numbers on the calibration clip."""

    drop: float             # float score minus int8 score (dB), measured against GT, or predicted without it
    fidelity_db: float      # int8 output vs the float output, SR frames
    fidelity_lr_db: float   # the same after the ×4 downscale
    judged: float           # what the guard holds against the budget


def measure_candidate(sr: np.ndarray, ref_sr: np.ndarray, quality_db: float,
                      score: Callable[[np.ndarray], float] | None = None) -> _Measured:
    """Judge int8 output ``sr`` against the float output ``ref_sr``, whose Y-PSNR against GT is ``quality_db``
    (measured with GT, estimated without). With GT (``score``: Y-PSNR against it) the drop is measured and judged
    by its size and at least what the fidelity implies; without, the drop is the one the fidelity implies."""
    fidelity, fidelity_lr = y_psnr_clip(sr, ref_sr), y_psnr_clip(_downscaled(sr), _downscaled(ref_sr))
    implied = implied_drop(quality_db, fidelity)
    if score is None:
        return _Measured(implied, fidelity, fidelity_lr, implied)
    drop = quality_db - score(sr)
    return _Measured(drop, fidelity, fidelity_lr, judged_drop(drop, implied))


LOW_SCALE_BIAS_DB = 1.5     # dense REDS4 on four real clips: full-scale Y-PSNR minus the quarter-scale one, 1.1-2.0


def estimated_quality(run_model: Callable[[np.ndarray], np.ndarray], frames: np.ndarray) -> float:
    """The float model's Y-PSNR against GT estimated without GT: ``run_model`` (uint8 LR frames → uint8 SR frames)
    on ``frames`` downscaled x4, against ``frames`` (cropped to multiples of 4), plus ``LOW_SCALE_BIAS_DB``."""
    h, w = frames.shape[1] // 4 * 4, frames.shape[2] // 4 * 4
    crop = np.ascontiguousarray(frames[:, :h, :w])
    return y_psnr_frames(run_model(bi_degrade(crop)), crop) + LOW_SCALE_BIAS_DB


def quantize_steps(graphs: Mapping[str, Any], bidirectional: bool, num_feat: int, frames: np.ndarray,
                   run_clip: Callable[[Mapping[str, Any], np.ndarray], np.ndarray], max_drop: float = 0.3,
                   gt: np.ndarray | None = None, reference_sr: np.ndarray | None = None,
                   quality_db: float | None = None) -> QuantResult:
    """Quantize the step graphs on ``frames`` (uint8 (T, h, w, 3)), keeping layers float until the drop fits.

    ``run_clip(step graphs, frames) → uint8 SR frames`` runs a candidate on the whole clip. The drop and the
    fidelity are counted from the float ``graphs``' output, or from ``reference_sr`` (the network as trained, on
    ``frames``) when the graphs already approximate it (a half-resolution flow): then the budget covers both
    approximations. A candidate fits when its judged drop is within ``max_drop``: with ``gt``, the measured drop by
    its size and at least what its fidelity implies (``check.judged_drop``); without, the drop its fidelity
    implies for a model of ``quality_db`` (``estimated_quality``; required then). Whether the float model deserves an int8 file
    at all is ``check_worth_quantizing``'s question, asked by the caller before the trace.
    """
    frames = check_calibration(frames)
    gt = _gt_for(frames, gt)
    if gt is None and quality_db is None:
        raise ValueError("without GT the guard needs the float model's estimated quality (estimated_quality)")
    score = (lambda sr: y_psnr_frames(sr, gt)) if gt is not None else None
    reference = "GT" if gt is not None else f"GT predicted (float model estimated at {quality_db:.1f} dB)"
    feeds = step_feeds(graphs, bidirectional, num_feat, frames)
    ref_sr = reference_sr[:len(frames)] if reference_sr is not None else run_clip(graphs, frames)
    float_score = score(ref_sr) if score is not None else quality_db
    if reference_sr is not None:        # an approximation (half flow) already over budget in float: no int8 fits
        alone = measure_candidate(run_clip(graphs, frames), ref_sr, float_score, score).judged
        if not within_budget(alone, max_drop):
            raise Int8OverBudget(f"int8 over budget: the float file alone (flow at half resolution) is judged a "
                                 f"{alone:.2f} dB Y-PSNR drop (budget {max_drop:.2f} dB); nothing was written: "
                                 f"export with full flow, or raise --max-drop")
    with int8_work_dir() as work:

        def attempt(keep: set[str]) -> tuple[tuple[dict[str, Any], _Measured], float]:
            q = {name: _quantize(g, feeds[name], keep, work, name) for name, g in graphs.items()}
            m = measure_candidate(run_clip(q, frames), ref_sr, float_score, score)
            return (q, m), m.judged

        (quant, measured), judged = attempt(set())
        trials = [(0, judged)]
        costs: dict[str, float] = {}
        kept: tuple[str, ...] = ()
        if not within_budget(judged, max_drop):      # layers are measured only when some must stay float
            for name, g in graphs.items():
                for layer, cost in layer_costs(g, quant[name], feeds[name][:3]).items():
                    costs[layer] = max(costs.get(layer, 0.0), cost)
            ranked = sorted(costs, key=costs.get, reverse=True)
            ranked += sorted({layer for g in graphs.values() for layer in conv_layers(g).values()} - set(costs))
            count, (quant, measured), judged, more = fewest_float(
                len(ranked), lambda n: attempt(set(ranked[:n])), max_drop, ((quant, measured), judged))
            trials += more
            kept = tuple(ranked[:count])
    return QuantResult(quant, kept, measured.drop, reference, tuple(trials), costs, measured.fidelity_db,
                       measured.fidelity_lr_db, measured.judged)

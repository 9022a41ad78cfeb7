"""An all-int8 network of a plan's shape, for timing only.

Why: an int8 file's speed on this CPU depends on its layers' widths, not on their weights, so ``compress`` can
time a plan before it pays for reconstructing it (minutes of a build against about one for a probe) and plan
again with the speed it really had. The probe is quantized on a few frames with no guard, lives in memory only
and is never anybody's output: its pictures mean nothing (a raw cut), its milliseconds are the file's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..models.basicvsr import BasicVSR
from .int8_work import int8_work_dir
from .onnx_export import deploy_copy
from .onnx_graph import assemble_clip_model, base_metadata, export_step_graphs
from .quantize import quantize_graph, step_feeds
from .runtime import OnnxStepper

PROBE_FRAMES = 3        # calibration ranges only set the scales; any real frames give the same speed


def int8_timing_probe(model: BasicVSR, frames: np.ndarray, flow: str = "full",
                      calibrate_on: int = PROBE_FRAMES) -> OnnxStepper:
    """``model`` (any weights: a raw cut times as its reconstruction will) as every convolution in int8, SpyNet at
    ``flow`` resolution, as a stepper ``sr`` and the speed measure run; calibrated on the first ``calibrate_on``
    of ``frames`` (uint8 (T, h, w, 3)). (``bench/bench_guard.py`` calibrates it as the guard's first attempt is,
    to study the guard's predictions on files with no layer kept float.)"""
    net = deploy_copy(model, flow)
    graphs = export_step_graphs(net)
    feeds = step_feeds(graphs, net.spec.bidirectional, net.num_feat, frames[:calibrate_on])
    with int8_work_dir() as work:
        quant = {name: quantize_graph(g, feeds[name], work, name) for name, g in graphs.items()}
    meta = base_metadata(net, "int8", {"timing probe": "weights not recovered"}, flow=flow)
    return OnnxStepper(assemble_clip_model(net, quant, meta), meta, Path("<timing probe>"))

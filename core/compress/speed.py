"""Realized speed on this machine: the file against the dense network, as ``sr`` streams them.

Why measured and not predicted: int8 gains depend on the CPU (3x per conv with AVX-512 VNNI, about 1.6x with
AVX2 alone) and on what is not a conv (warps, SpyNet's small levels); the latency table only knows PyTorch fp32.
Times are marginal (a long clip minus a short one, so start-up is not counted), the two networks alternate
round by round (a noisy neighbour slows both alike), and the speed-up is the median of the rounds' ratios.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..profile.latency import network_seconds, timing_clips

TIMING_FRAMES = (2, 6)
ROUNDS = 3


@dataclass(frozen=True)
class SpeedMeasure:
    """Marginal ms per frame of the dense network and of the file, round by round, at one LR size."""

    size: tuple[int, int]
    dense_ms: tuple[float, ...]
    model_ms: tuple[float, ...]

    @property
    def speedup(self) -> float:
        return statistics.median(d / m for d, m in zip(self.dense_ms, self.model_ms))

    @property
    def dense_median_ms(self) -> float:
        return statistics.median(self.dense_ms)

    @property
    def model_median_ms(self) -> float:
        return statistics.median(self.model_ms)

    def to_json(self) -> dict[str, Any]:
        return {"size": list(self.size), "speedup": round(self.speedup, 3),
                "dense_ms_per_frame": round(self.dense_median_ms, 2),
                "model_ms_per_frame": round(self.model_median_ms, 2),
                "rounds_dense_ms": [round(v, 2) for v in self.dense_ms],
                "rounds_model_ms": [round(v, 2) for v in self.model_ms]}


def _marginal_ms(network: Any, clips: list[np.ndarray]) -> float:
    short, long_ = (network_seconds(network, clip) for clip in clips)
    return max(long_ - short, 1e-9) / (len(clips[1]) - len(clips[0])) * 1e3


def realized_speed(dense: Any, model: Any, size: tuple[int, int], rounds: int = ROUNDS) -> SpeedMeasure:
    """Interleaved marginal timings of ``dense`` (PyTorch fp32) and ``model`` (any stepper ``sr`` runs)."""
    clips = timing_clips(size, TIMING_FRAMES)
    for network in (dense, model):
        network_seconds(network, clips[0])            # warm-up: first-run allocations and kernel choice
    dense_ms, model_ms = [], []
    for _ in range(rounds):
        dense_ms.append(_marginal_ms(dense, clips))
        model_ms.append(_marginal_ms(model, clips))
    return SpeedMeasure(tuple(size), tuple(dense_ms), tuple(model_ms))


def dense_ms(dense: Any, size: tuple[int, int], rounds: int = ROUNDS) -> float:
    """Median marginal ms per frame of the dense network alone (the baseline a speed-up is planned from)."""
    clips = timing_clips(size, TIMING_FRAMES)
    network_seconds(dense, clips[0])
    return statistics.median(_marginal_ms(dense, clips) for _ in range(rounds))


def int8_conv_gain(size: tuple[int, int], channels: int = 64, depth: int = 4, repeats: int = 5) -> float:
    """PyTorch fp32 time (what the latency table predicts) over onnxruntime int8 time (QDQ, per-channel, as the
    int8 export quantizes) of a stack of ``channels``→``channels`` 3×3 convs at ``size``: what int8 buys a trunk on
    this CPU. A starting point for planning only; the file itself is timed afterwards."""
    from onnx import TensorProto, helper, numpy_helper

    from ..deploy.int8_work import int8_work_dir
    from ..deploy.quantize import _session, quantize_graph    # as the int8 export quantizes and runs

    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(depth):
        w = (rng.standard_normal((channels, channels, 3, 3)) * 0.05).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"))
        nodes.append(helper.make_node("LeakyRelu", [f"c{i}"], [f"a{i}"], alpha=0.1, name=f"act{i}"))
        x = f"a{i}"
    shape = [1, channels, *size]
    graph = helper.make_graph(nodes, "trunk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    feeds = [{"x": rng.random(shape, dtype=np.float32)} for _ in range(2)]

    with int8_work_dir() as work:
        quant = quantize_graph(proto, feeds, work, "trunk")

    def best_seconds(run: Callable[[], Any]) -> float:
        run()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return min(times)

    # The same stack in PyTorch fp32 as the latency table times it (channels-last, no autograd).
    torch_stack = torch.nn.Sequential(*(layer for w in inits for layer in (
        _conv(numpy_helper.to_array(w)), torch.nn.LeakyReLU(0.1)))).eval().to(memory_format=torch.channels_last)
    x_torch = torch.from_numpy(feeds[0]["x"]).contiguous(memory_format=torch.channels_last)
    int8 = _session(quant)
    with torch.no_grad():
        return best_seconds(lambda: torch_stack(x_torch)) / best_seconds(lambda: int8.run(None, feeds[0]))


def _conv(weight: np.ndarray) -> torch.nn.Conv2d:
    conv = torch.nn.Conv2d(weight.shape[1], weight.shape[0], 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weight))
    return conv


def _gain_path(key: str) -> Path:
    import hashlib

    from ..profile.latency import cache_dir

    return cache_dir() / "int8-gain" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def remembered_gain(key: str) -> float | None:
    """The whole-network int8 gain a file built here last measured (``remember_gain``), or None."""
    import json

    try:
        value = json.loads(_gain_path(key).read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) and 0.1 < value < 100 else None


def remember_gain(key: str, gain: float) -> None:
    """Keep the gain a built file really had against the table (a later ``compress`` here plans with it, and
    its first file lands nearer the asked speed); an unwritable cache only costs the micro-benchmark again."""
    import json

    from ..errors import UserError
    from ..io.output import write_text

    path = _gain_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps({key: gain}), overwrite=True)
    except (OSError, UserError):
        pass

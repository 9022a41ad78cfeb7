"""Per-layer latency on this device: a table measured once at the clip's size, and ms per frame for any network.

Why not MACs: oneDNN runs widths that are not a multiple of 16 at 40-70 % of its MAC rate and small convs
hit a floor, so two plans with equal MACs can differ in speed; a planner that knows what each width costs
here makes faster plans. The table samples conv widths in steps of ``GRID`` (what the kernels block by),
interpolates between them, and measures the width-independent rest (SpyNet, warps, the trunks' input convs,
the bilinear skip) once as a network with one block per trunk. It is cached per device, torch version,
thread count and frame size, so it is built once (seconds) and read in milliseconds.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import UserError
from ..models.basicvsr import BasicVSR
from ..models.layout import add_channels_, select_channels
from ..models.spec import HEAD_WIDTH, ArchSpec, BlockSpec

GRID = 16
TABLE_VERSION = 2        # 2: the fixed part measured through the streaming engine, as sr runs
REPEATS = 2


def width_grid(n: int) -> list[int]:
    """Sampled widths up to ``n``: multiples of GRID, plus ``n`` itself (and the smallest width of a tiny net)."""
    return sorted({*range(GRID, n + 1, GRID), n})


@dataclass(frozen=True)
class LatencyTable:
    """Measured costs at one LR frame size; ``predict_ms(spec)`` is a sum of table look-ups (microseconds)."""

    key: str
    size: tuple[int, int]
    num_feat: int
    bidirectional: bool
    cins: tuple[int, ...]            # sampled input widths of 3×3 convs
    couts: tuple[int, ...]           # sampled output widths of 3×3 convs
    k3: tuple[tuple[float, ...], ...]   # ms at the LR size, [cin][cout]
    k1: tuple[float, ...]            # fusion 1×1 (2·num_feat inputs) ms per sampled output width (cins grid)
    last: tuple[float, ...]          # conv_last (3 outputs) ms per sampled input width (cins grid)
    big: float                       # ns/pixel of a conv on a 4× larger map relative to the LR map
    offgrid_in: float                # slowdown of an input width off the grid (measured at one point)
    offgrid_out: float
    per_element_ns: dict[str, float]  # act (ReLU-like), select, add, addc (index-add)
    fixed_ms: float                  # everything whose width never changes, per frame
    build_seconds: float = 0.0
    device: str = ""

    # -- look-ups ------------------------------------------------------------------------------------
    def _dense(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cached = getattr(self, "_cache", None)
        if cached is not None:
            return cached
        cmax, dmax = max(self.cins), max(self.couts)
        ci, co = np.arange(cmax + 1), np.arange(dmax + 1)
        grid = np.asarray(self.k3)
        rows = np.stack([np.interp(co, self.couts, r) for r in grid])          # [cin sample][cout]
        full = np.stack([np.interp(ci, self.cins, rows[:, j]) for j in co], 1)  # [cin][cout]
        # Widths between two samples pay the measured off-grid slowdown; below the first sample the cost is
        # the floor a conv never goes under.
        on_in = np.isin(ci, self.cins) | (ci < self.cins[0])
        on_out = np.isin(co, self.couts) | (co < self.couts[0])
        full *= np.where(on_in, 1.0, self.offgrid_in)[:, None]
        full *= np.where(on_out, 1.0, self.offgrid_out)[None, :]
        k1 = np.interp(ci, self.cins, self.k1) * np.where(on_in, 1.0, self.offgrid_out)
        last = np.interp(ci, self.cins, self.last) * np.where(on_in, 1.0, self.offgrid_in)
        object.__setattr__(self, "_cache", (full, k1, last))
        return full, k1, last

    def conv_ms(self, cin: int, cout: int, pixels_factor: int = 1) -> float:
        """A 3×3 conv at ``pixels_factor`` times the LR pixel count (4 after the first shuffle, 16 after two)."""
        full, _, _ = self._dense()
        scale = pixels_factor * (self.big if pixels_factor > 1 else 1.0)
        return float(full[min(cin, full.shape[0] - 1), min(cout, full.shape[1] - 1)]) * scale

    def _elementwise_ms(self, kind: str, channels: int, pixels_factor: int = 1) -> float:
        h, w = self.size
        return self.per_element_ns[kind] * channels * h * w * pixels_factor * 1e-6

    def predict_ms(self, spec: ArchSpec) -> float:
        """Predicted ms per frame (marginal: what one more frame of a clip costs) of the network ``spec``."""
        return self.fixed_ms + self.variable_ms(spec)

    def variable_ms(self, spec: ArchSpec) -> float:
        """The width-dependent part: residual blocks and the head's prunable convs."""
        nf, total = spec.num_feat, 0.0
        for trunk in (("backward", "forward") if spec.bidirectional else ("forward",)):
            for b in spec.trunk_blocks(trunk):
                total += self.block_ms(b.n_reads(nf), b.mid, b.n_writes(nf), nf)
        return total + self.head_ms(spec.fusion if spec.bidirectional else None, spec.upconv1, spec.upconv2,
                                    spec.conv_hr, nf)

    def block_ms(self, reads: int, mid: int, writes: int, nf: int) -> float:
        """One residual block reading ``reads`` and writing ``writes`` of the ``nf`` stream channels."""
        ms = self.conv_ms(reads, mid) + self.conv_ms(mid, writes) + self._elementwise_ms("act", mid)
        if reads < nf:
            ms += self._elementwise_ms("select", reads)
        return ms + (self._elementwise_ms("add", nf) if writes >= nf else self._elementwise_ms("addc", writes))

    def head_ms(self, fusion: int | None, upconv1: int, upconv2: int, conv_hr: int, nf: int) -> float:
        """fusion (None for -uni) → two conv + pixel-shuffle stages → conv_hr → conv_last."""
        _, k1, last = self._dense()
        total, head_in = 0.0, nf
        if fusion is not None:
            total += float(k1[min(fusion, k1.size - 1)]) + self._elementwise_ms("act", fusion)
            head_in = fusion
        total += self.conv_ms(head_in, 4 * upconv1) + self._elementwise_ms("act", 8 * upconv1)
        total += self.conv_ms(upconv1, 4 * upconv2, 4) + self._elementwise_ms("act", 8 * upconv2, 4)
        total += self.conv_ms(upconv2, conv_hr, 16) + self._elementwise_ms("act", conv_hr, 16)
        return total + float(last[min(conv_hr, last.size - 1)]) * 16 * self.big

    # -- files ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"version": TABLE_VERSION, "key": self.key, "size": list(self.size), "num_feat": self.num_feat,
                "bidirectional": self.bidirectional, "cins": list(self.cins), "couts": list(self.couts),
                "k3": [list(r) for r in self.k3], "k1": list(self.k1), "last": list(self.last), "big": self.big,
                "offgrid_in": self.offgrid_in, "offgrid_out": self.offgrid_out,
                "per_element_ns": dict(self.per_element_ns), "fixed_ms": self.fixed_ms,
                "build_seconds": self.build_seconds, "device": self.device}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "LatencyTable":
        return cls(str(d["key"]), tuple(int(v) for v in d["size"]), int(d["num_feat"]), bool(d["bidirectional"]),
                   tuple(int(v) for v in d["cins"]), tuple(int(v) for v in d["couts"]),
                   tuple(tuple(float(v) for v in r) for r in d["k3"]), tuple(float(v) for v in d["k1"]),
                   tuple(float(v) for v in d["last"]), float(d["big"]), float(d["offgrid_in"]),
                   float(d["offgrid_out"]), {str(k): float(v) for k, v in d["per_element_ns"].items()},
                   float(d["fixed_ms"]), float(d.get("build_seconds", 0.0)), str(d.get("device", "")))


# -- measuring ----------------------------------------------------------------------------------------
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def table_key(device: torch.device, size: tuple[int, int], num_feat: int, bidirectional: bool) -> str:
    return (f"{device_name(device)}|torch {torch.__version__}|{size[0]}x{size[1]}|nf {num_feat}|"
            f"{'bi' if bidirectional else 'uni'}|v{TABLE_VERSION}")


def cache_dir() -> Path:
    """Where tables are kept: $SSL_VSR_CACHE, else $XDG_CACHE_HOME/ssl-vsr, else ~/.cache/ssl-vsr."""
    root = os.environ.get("SSL_VSR_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssl-vsr"


class _Bench:
    """Times ops on one device in the layout inference uses (channels-last on the CPU), in interleaved rounds.

    Every op is queued first and then timed once per round, round after round, keeping each op's fastest run:
    a load spike on a shared machine then hits one run of many ops, not all runs of a few.
    """

    def __init__(self, device: torch.device, size: tuple[int, int]) -> None:
        self.device, self.size = device, size
        self.layout = torch.channels_last if device.type == "cpu" else torch.contiguous_format
        self.sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        self.ops: dict[Any, Callable[[], Any]] = {}

    def x(self, channels: int, factor: int = 1) -> torch.Tensor:
        h, w = self.size
        side = int(round(factor ** 0.5))
        return torch.rand(1, channels, h * side, w * side, device=self.device).contiguous(memory_format=self.layout)

    def conv(self, key: Any, cin: int, cout: int, k: int = 3, factor: int = 1) -> None:
        conv = torch.nn.Conv2d(cin, cout, k, 1, k // 2).to(self.device).to(memory_format=self.layout)
        x = self.x(cin, factor)
        self.ops[key] = lambda: conv(x)

    def run(self, repeats: int = REPEATS) -> dict[Any, float]:
        """ms of every queued op: its fastest run over ``repeats`` rounds (after one warm-up run each)."""
        best = {}
        for key, fn in self.ops.items():
            fn()
            best[key] = math.inf
        for _ in range(repeats):
            for key, fn in self.ops.items():
                self.sync()
                start = time.perf_counter()
                fn()
                self.sync()
                best[key] = min(best[key], time.perf_counter() - start)
        return {key: v * 1e3 for key, v in best.items()}


def _monotone(grid: np.ndarray) -> np.ndarray:
    """More inputs or outputs never cost less: a running maximum along both axes removes noise dips."""
    return np.maximum.accumulate(np.maximum.accumulate(grid, axis=0), axis=1)


@torch.no_grad()
def measure_table(device: torch.device, size: tuple[int, int], num_feat: int = 64,
                  bidirectional: bool = True, repeats: int = REPEATS) -> LatencyTable:
    """Measure a table now (seconds on a CPU at 180×320); ``latency_table`` caches it."""
    start = time.perf_counter()
    b = _Bench(device, size)
    cins = width_grid(max(num_feat, HEAD_WIDTH))
    couts = sorted({*cins, 4 * cins[-1]})   # past the top width a conv's cost is linear in its outputs
    for ci in cins:
        for co in couts:
            b.conv(("k3", ci, co), ci, co)
        b.conv(("k1", ci), 2 * num_feat, ci, k=1)
        b.conv(("last", ci), ci, 3)
    top = cins[-1]
    b.conv("big", top, top, factor=4)
    mid = top - GRID // 2
    if top > GRID:      # one width between two samples, against the interpolation
        b.conv("off_in", mid, top)
        b.conv("off_out", top, mid)
    _queue_elementwise(b, num_feat)
    ms = b.run(repeats)
    k3 = _monotone(np.array([[ms[("k3", ci, co)] for co in couts] for ci in cins]))
    k1 = np.maximum.accumulate([ms[("k1", ci)] for ci in cins])
    last = np.maximum.accumulate([ms[("last", ci)] for ci in cins])
    big = ms["big"] / (4 * k3[-1][couts.index(top)])
    offgrid_in = offgrid_out = 1.0
    if top > GRID:
        offgrid_in = max(1.0, ms["off_in"] / ((k3[-2][couts.index(top)] + k3[-1][couts.index(top)]) / 2))
        offgrid_out = max(1.0, ms["off_out"] / ((k3[-1][couts.index(top - GRID)] + k3[-1][couts.index(top)]) / 2))
    n = num_feat * size[0] * size[1]
    per_element = {"act": ms["act"] * 1e6 / n, "add": ms["add"] * 1e6 / n,
                   "select": ms["select"] * 1e6 / (n / 2), "addc": ms["addc"] * 1e6 / (n / 2)}
    table = LatencyTable("", tuple(size), num_feat, bidirectional, tuple(cins), tuple(couts),
                         tuple(tuple(float(v) for v in r) for r in k3), tuple(float(v) for v in k1),
                         tuple(float(v) for v in last), big, offgrid_in, offgrid_out, per_element, 0.0,
                         device=device_name(device))
    skeleton = _skeleton(num_feat, bidirectional)
    fixed = marginal_ms(BasicVSR(skeleton), device, size, repeats=repeats) - table.variable_ms(skeleton)
    return LatencyTable(table_key(device, size, num_feat, bidirectional), *(
        getattr(table, f) for f in ("size", "num_feat", "bidirectional", "cins", "couts", "k3", "k1", "last", "big",
                                    "offgrid_in", "offgrid_out", "per_element_ns")),
        max(fixed, 0.0), time.perf_counter() - start, device_name(device))


def _queue_elementwise(b: _Bench, nf: int) -> None:
    x, y = b.x(nf), b.x(nf)
    half = torch.arange(0, nf, 2, device=b.device)
    y_half = b.x(len(half))
    b.ops["act"] = lambda: torch.relu_(y)
    b.ops["add"] = lambda: x.add_(y)
    b.ops["select"] = lambda: select_channels(x, half)
    b.ops["addc"] = lambda: add_channels_(x, half, y_half)


def _skeleton(nf: int, bidirectional: bool) -> ArchSpec:
    """One full-width block per trunk and the smallest sampled head: mostly the part no plan changes."""
    small = width_grid(nf)[0]
    block = (BlockSpec(mid=nf),)
    return ArchSpec(variant="basicvsr" if bidirectional else "basicvsr-uni", num_feat=nf, forward_blocks=block,
                    backward_blocks=block if bidirectional else (), fusion=small, upconv1=small,
                    upconv2=width_grid(HEAD_WIDTH)[0], conv_hr=width_grid(HEAD_WIDTH)[0])


def marginal_ms(model: BasicVSR, device: torch.device, size: tuple[int, int], frames: tuple[int, int] = (2, 4),
                repeats: int = REPEATS) -> float:
    """ms per frame of the network as ``sr`` streams a clip, marginal: (long clip − short clip) / extra frames.

    The clips run through the streaming engine ``sr`` uses (one recurrent step at a time, states spilled past
    its memory budget, uint8 frames out), so the time is the one ``sr`` reports as the network's; runs alternate
    between the two lengths and each length keeps its fastest run, since a shared machine only ever adds time.
    """
    clips = timing_clips(size, frames)
    network_seconds(model, clips[0], device)
    best = [math.inf, math.inf]
    for _ in range(repeats):
        for i, clip in enumerate(clips):
            best[i] = min(best[i], network_seconds(model, clip, device))
    return (best[1] - best[0]) / (frames[1] - frames[0]) * 1e3


def timing_clips(size: tuple[int, int], frames: tuple[int, ...]) -> list[np.ndarray]:
    """Random uint8 clips of ``size`` (h, w) and each length in ``frames``: what marginal timings run."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (t, *size, 3), dtype=np.uint8) for t in frames]


def network_seconds(model: Any, clip: np.ndarray, device: torch.device | str = "cpu") -> float:
    """Seconds the network (a ``BasicVSR`` or an onnxruntime stepper) takes over ``clip`` as ``sr`` streams it,
    reading and writing left out."""
    from ..stream import stream_frames

    run = stream_frames(model, clip, device=device)   # a private copy each run: the model stays as it is
    for _ in run:
        pass
    return run.seconds - run.timing.io * run.frames_done


def table_path(key: str) -> Path:
    """The cache file of the table with ``key``."""
    return cache_dir() / "latency" / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def latency_table(device: torch.device | str, size: tuple[int, int], num_feat: int = 64, bidirectional: bool = True,
                  *, refresh: bool = False, progress: Callable[[str], None] | None = None) -> LatencyTable:
    """The cached table for this device, torch version, thread count and size; measured (and cached) if absent."""
    from ..io.output import write_text

    device = torch.device(device)
    key = table_key(device, size, num_feat, bidirectional)
    path = table_path(key)
    if not refresh and path.is_file():
        try:
            table = LatencyTable.from_json(json.loads(path.read_text(encoding="utf-8")))
            if table.key == key:
                return table
        except (OSError, ValueError, KeyError, TypeError):
            pass        # a damaged or foreign cache file is measured again
    if progress is not None:
        progress(f"measuring layer latencies on {device_name(device)} at {size[0]}x{size[1]} (once) …")
    table = measure_table(device, size, num_feat, bidirectional)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(table.to_json(), indent=1), overwrite=True)
    except (OSError, UserError):
        pass            # an unwritable cache only costs a re-measure next time
    return table


def fps(ms_per_frame: float) -> float:
    return 1000.0 / ms_per_frame if ms_per_frame > 0 else float("inf")


__all__ = ["GRID", "LatencyTable", "cache_dir", "fps", "latency_table", "marginal_ms", "measure_table",
           "network_seconds", "table_key", "table_path", "timing_clips", "width_grid"]

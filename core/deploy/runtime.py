"""Running our exported ONNX files with onnxruntime: the whole clip, or step by step as a Contract 2 stepper.

A file is ours when its metadata says so (``ssl_vsr.format``); anything else is refused in one line, because its
inputs, outputs and semantics are unknown. Even then it is untrusted input: ``onnx_checks`` verifies its
metadata, structure and weights before onnxruntime sees it, and an onnxruntime failure on it is one line too.
The step models are the bodies of the file's ``Scan`` loops, taken out unchanged, so streaming a file runs
exactly the graphs the whole-clip model runs.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError
from ..io.missing import why_missing
from ..models.spec import ArchSpec
from .onnx_checks import ForeignModelError, check_model, parse_spec
from .onnx_graph import SCAN_NODES
from .steps import FLOW_IO

MAX_ONNX_BYTES = 2 * 2**30      # protobuf's own limit; a bigger file is not one of ours


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def read_onnx(path: str | Path) -> tuple[Any, dict[str, str]]:
    """The model proto and its metadata; one-line errors for anything that is not ours, refers to other files,
    holds non-finite weights or malformed metadata (``onnx_checks``), before onnxruntime reads any of it."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: {why_missing(p) or 'not a file'}")
    if p.stat().st_size > MAX_ONNX_BYTES:
        raise ForeignModelError(f"{p}: {p.stat().st_size / 2**30:.1f} GiB is larger than any ONNX file this tool "
                                f"writes")
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and others on garbage
        raise ForeignModelError(f"{p}: not an ONNX model ({type(e).__name__})") from None
    meta, _ = check_model(proto, p)
    return proto, meta


def spec_of(meta: dict[str, str], path: Path) -> ArchSpec:
    if "ssl_vsr.spec" not in meta:
        raise ForeignModelError(f"{path}: damaged model (no ssl_vsr.spec metadata)")
    return parse_spec(meta["ssl_vsr.spec"], path)


def _ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's own exception types (a file that passed our checks can still fail inside it)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return tuple(v for v in vars(state).values() if isinstance(v, type) and issubclass(v, Exception))


def _ort_failure(path: Path | None, e: Exception) -> ForeignModelError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return ForeignModelError(f"{path or 'ONNX model'}: onnxruntime cannot run this file ({first[:200]})")


def _session(proto: Any, threads: int | None, path: Path | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except _ort_errors() as e:
        raise _ort_failure(path, e) from None


def _run(session: Any, outputs: list[str] | None, feeds: dict[str, np.ndarray], path: Path | None) -> list[np.ndarray]:
    """``session.run``, with onnxruntime's failures (a bad index in a file's own graph...) as one line."""
    try:
        return session.run(outputs, feeds)
    except _ort_errors() as e:
        raise _ort_failure(path, e) from None


def step_models(proto: Any) -> dict[str, Any]:
    """Branch name → standalone model of the body of that branch's Scan loop."""
    from onnx import helper

    bodies = {}
    for node in proto.graph.node:
        for name, scan in SCAN_NODES.items():
            if node.op_type == "Scan" and node.name == scan:
                body = next(a.g for a in node.attribute if a.name == "body")
                model = helper.make_model(body, opset_imports=list(proto.opset_import))
                model.ir_version = proto.ir_version
                bodies[name] = model
    return bodies


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().cpu().float().numpy())


class OnnxClip:
    """The whole-clip graph: ``(N, T, 3, h, w) → (N, T, 3, 4h, 4w)`` for any T ≥ 1, h, w."""

    def __init__(self, proto: Any, threads: int | None = None, path: Path | None = None) -> None:
        self.path = path
        self.session = _session(proto, threads, path)

    def __call__(self, lr: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(_run(self.session, ["sr"], {"lr": _np(lr)}, self.path)[0])


class OnnxStepper:
    """A Contract 2 stepper on onnxruntime: the same members as ``BasicVSR``, on float32 CPU torch tensors.

    ``None`` for a missing neighbour or state becomes the frame itself and a zero state (exact, see
    ``core.deploy.steps``).
    """

    def __init__(self, proto: Any, meta: dict[str, str], path: Path, threads: int | None = None) -> None:
        self.path = path
        self.spec = spec_of(meta, path)
        self.num_feat = self.spec.num_feat
        self.bidirectional = self.spec.bidirectional
        self.precision = meta.get("ssl_vsr.precision", "fp32")
        self.kept_float = tuple(json.loads(meta.get("ssl_vsr.kept_float", "[]")))     # checked by read_onnx
        self.meta = meta
        self._threads = threads
        self._steps = step_models(proto)
        needed = {"backward", "forward"} if self.bidirectional else {"forward"}
        if set(self._steps) != needed:
            raise ForeignModelError(f"{path}: damaged model (expected the {' and '.join(sorted(needed))} step "
                                    f"loops, found {', '.join(sorted(self._steps)) or 'none'})")
        self._sessions = {name: _session(model, threads, path) for name, model in self._steps.items()}
        self._outputs = {name: [o.name for o in model.graph.output] for name, model in self._steps.items()}
        self._flow_session: Any = None

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.num_feat, x.shape[2], x.shape[3])

    def _run(self, name: str, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
        return _run(self._sessions[name], self._outputs[name], {k: _np(v) for k, v in feeds.items()}, self.path)

    def backward_step(self, x_t: torch.Tensor, x_next: torch.Tensor | None,
                      h_next: torch.Tensor | None) -> torch.Tensor:
        if not self.bidirectional:
            raise ValueError("basicvsr-uni has no backward branch")
        cold = h_next is None
        out = self._run("backward", {"x_t": x_t, "x_next": x_t if cold else x_next,
                                     "h_next": self._zeros(x_t) if cold else h_next})
        return torch.from_numpy(out[1])                 # body outputs: x_t copy, h_t, h_t (scan copy)

    def forward_step(self, x_t: torch.Tensor, x_prev: torch.Tensor | None, h_prev: torch.Tensor | None,
                     h_b: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        cold = h_prev is None
        feeds = {"x_t": x_t, "x_prev": x_t if cold else x_prev, "h_prev": self._zeros(x_t) if cold else h_prev}
        if self.bidirectional:
            if h_b is None:
                raise ValueError("basicvsr needs the backward state of the frame (h_b)")
            feeds["h_b"] = h_b
        out = self._run("forward", feeds)                # body outputs: x_t copy, h_t, sr_t
        return torch.from_numpy(out[2]), torch.from_numpy(out[1])

    def flow(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        """SpyNet's flow, cut out of the forward step graph on first use."""
        if self._flow_session is None:
            import onnx.shape_inference
            import onnx.utils

            typed = onnx.shape_inference.infer_shapes(self._steps["forward"])
            extracted = onnx.utils.Extractor(typed).extract_model(["x_t", "x_prev"], [FLOW_IO[1][0]])
            self._flow_session = _session(extracted, self._threads, self.path)
        return torch.from_numpy(_run(self._flow_session, None, {"x_t": _np(x_a), "x_prev": _np(x_b)}, self.path)[0])


def load_stepper(path: str | Path, threads: int | None = None) -> OnnxStepper:
    """An exported .onnx of ours as a stepper the streaming engine runs (``core.stream``)."""
    proto, meta = read_onnx(path)
    return OnnxStepper(proto, meta, Path(path), threads)


def load_clip(path: str | Path, threads: int | None = None) -> OnnxClip:
    proto, _ = read_onnx(path)
    return OnnxClip(proto, threads, Path(path))


def load_network(path: str | Path, *, allow_nonfinite: bool = False):
    """What ``sr``/``eval`` run: a checkpoint's ``BasicVSR``, or for an exported ``.onnx`` of ours its stepper.

    Both are Contract 2 steppers, so the streaming engine runs either; an onnxruntime stepper runs on the CPU.
    """
    if is_onnx(path):
        return load_stepper(path)
    from ..io.checkpoint import load_checkpoint

    return load_checkpoint(path, allow_nonfinite=allow_nonfinite).model


def run_device(network, device: torch.device) -> torch.device:
    """The device a network runs on: onnxruntime steppers always on the CPU (their tensors come back there)."""
    return torch.device("cpu") if isinstance(network, OnnxStepper) else device

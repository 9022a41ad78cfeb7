"""One ONNX trace per distinct network in a test session (the trace dominates the ONNX tests' time: a dynamo export
of a tiny step graph takes many seconds on a 2-core CPU, and the compress tests traced the same network 2-3 times).

``memo_traces`` (a fixture in conftest) wraps ``core.deploy.onnx_graph._export_module``: a module is traced once
per CONTENT (its class, every attribute of every submodule, every parameter and buffer byte for byte with its
strides, the input/output names, the example inputs and the opset) and later calls with equal content get a fresh
copy of the same ModelProto, never a shared object. Equal content traces to the same graph (the export is
deterministic), so a test sees exactly the file it saw before, only sooner.

SpyNet's ``Flow`` wrapper is keyed on SpyNet alone (``BasicVSR.flow`` is ``self.spynet(x_a, x_b)``; checked
below, else the whole network is the key): every tiny test network built with the same seed has the same SpyNet,
so its flow graph (about 70 % of a trace) is traced once per resolution for the whole session. Traced for two
networks with different trunks, the flow graphs have the same nodes, initializers and value infos; they differ only
in the graph's ``pkg.torch.export...graph_signature`` metadata entry, which lists every parameter of the wrapped
network, unused ones too, and which ``compose_step`` does not carry into a step graph (it takes the flow graph's
nodes, initializers and value infos alone), so the step graphs and files are byte for byte the same.

A tensor's ``requires_grad`` is not part of the key: every trace is made under ``torch.no_grad``, and a SpyNet
frozen for distillation (``requires_grad`` off, as ``core.train.frames_distill`` leaves it) traced to the same
ModelProto, byte for byte, as the one it was copied from; keyed on it, a distilled cut traced its flow again.
"""
from __future__ import annotations

import hashlib
import inspect
import io
import pickle
from typing import Any, Callable

import torch

_TRACES: dict[str, bytes] = {}          # key -> serialized ModelProto
stats = {"traced": 0, "reused": 0}


class _Pickler(pickle.Pickler):
    """Pickles a module with every tensor replaced by its dtype, shape, strides and a digest of its bytes."""

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu()
            flat = t.contiguous().reshape(-1)
            data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
            return ("tensor", type(obj).__name__, str(t.dtype), tuple(t.shape), tuple(t.stride()),
                    hashlib.sha256(data).hexdigest())
        return None


def _flow_is_spynet_alone() -> bool:
    from core.models.basicvsr import BasicVSR

    body = inspect.getsource(BasicVSR.flow).strip().splitlines()[-1].strip()
    return body == "return self.spynet(x_a, x_b)"


def _key(module: torch.nn.Module, inputs: tuple[str, ...], outputs: tuple[str, ...],
         example: tuple[torch.Tensor, ...], opset: int) -> str | None:
    from core.deploy.steps import Flow

    if type(module) is Flow and _flow_is_spynet_alone():
        content: Any = ("Flow", module.training, module.model.training, module.model.spynet)
    else:
        content = (type(module).__module__, type(module).__qualname__, module)
    buf = io.BytesIO()
    try:
        _Pickler(buf, protocol=4).dump((content, tuple(inputs), tuple(outputs), tuple(example), int(opset)))
    except Exception:              # something in the module does not pickle: trace it as before
        return None
    return hashlib.sha256(buf.getvalue()).hexdigest()


def memoized(real: Callable[..., Any]) -> Callable[..., Any]:
    """``_export_module`` tracing each distinct content once (see the module's docstring)."""
    import onnx

    def export(module, inputs, outputs, example, opset):
        module.eval()                                          # as the real one does, before the key is taken
        key = _key(module, inputs, outputs, example, opset)
        if key is None:
            return real(module, inputs, outputs, example, opset)
        if key not in _TRACES:
            _TRACES[key] = real(module, inputs, outputs, example, opset).SerializeToString()
            stats["traced"] += 1
        else:
            stats["reused"] += 1
        proto = onnx.ModelProto()
        proto.ParseFromString(_TRACES[key])
        return proto

    export.memoized = True
    return export

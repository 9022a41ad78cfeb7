"""What an ``.onnx`` file must be before onnxruntime sees it: ours, self-contained, finite and shaped as we write.

Why: ``sr`` and ``eval`` run exported files, and a file is untrusted input however it is named. onnxruntime
follows an initializer's external-data path relative to the current folder (a tester made it load a file from
there as weights, and ``/etc/passwd`` gave a traceback), runs NaN weights into a Gather traceback or black frames
with exit 0, and a metadata value of ours that is not JSON gave a ``JSONDecodeError`` traceback. Every check here
reads the parsed protobuf only (``onnx.load(..., load_external_data=False)``), so a refusal costs no inference.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import CheckpointError
from ..io.safe_json import JSONError, load_json_text
from ..models.spec import ArchSpec, check_bounds
from .onnx_graph import FORMAT, FORMAT_KEY, FORMAT_VERSION, PRECISIONS, SCAN_NODES
from .steps import BACKWARD_IO, FORWARD_IO, UNI_IO

__all__ = ["ForeignModelError", "check_model", "parse_spec"]

MAX_META_ENTRIES = 64
MAX_META_CHARS = 1 << 20          # one metadata value (the spec of a 200-block network is ~100 KB)
STANDARD_DOMAINS = ("", "ai.onnx")
_MAX_REPORT = 40                  # characters of an untrusted name quoted in a message


class ForeignModelError(CheckpointError):
    """An .onnx file that this tool did not export (or that is damaged)."""


def _quote(text: object) -> str:
    return repr(str(text)[:_MAX_REPORT])


# -- metadata ---------------------------------------------------------------------------------------------------
def _json(value: str, key: str, path: Path, kind: type, finite: bool = True) -> Any:
    try:
        data = load_json_text(value, f"{path}: damaged {key} metadata", finite=finite)
    except JSONError as e:
        raise ForeignModelError(str(e)) from None
    if not isinstance(data, kind):
        raise ForeignModelError(f"{path}: damaged {key} metadata (not a JSON {kind.__name__})")
    return data


def parse_spec(value: str, path: Path) -> ArchSpec:
    """The network a file of ours was exported from, read from its ``ssl_vsr.spec`` and bounded."""
    data = _json(value, "ssl_vsr.spec", path, dict)
    try:
        spec = ArchSpec.from_json(data)
        check_bounds(spec)
    except (KeyError, TypeError, ValueError) as e:
        raise ForeignModelError(f"{path}: damaged ssl_vsr.spec metadata ({e})") from None
    return spec


def _one_of(choices: Callable[[], tuple[str, ...]]) -> Callable[[str, str, Path], None]:
    def check(value: str, key: str, path: Path) -> None:
        if value not in choices():
            raise ForeignModelError(f"{path}: unknown {key} {_quote(value)} (expected one of {', '.join(choices())})")
    return check


def _flows() -> tuple[str, ...]:
    from ..models.spynet import FLOW_RESOLUTIONS

    return FLOW_RESOLUTIONS


def _number(value: str, key: str, path: Path) -> None:
    """A measurement the file records (NaN when it was not measured); read by people, never computed with."""
    try:
        float(value)
        ok = len(value) <= 40
    except ValueError:
        ok = False
    if not ok:
        raise ForeignModelError(f"{path}: damaged {key} metadata ({_quote(value)} is not a number)")


def _names(value: str, key: str, path: Path) -> None:
    if not all(isinstance(v, str) for v in _json(value, key, path, list)):
        raise ForeignModelError(f"{path}: damaged {key} metadata (not a list of layer names)")


def _text(value: str, key: str, path: Path) -> None:
    if len(value) > 80 or not value.isprintable():
        raise ForeignModelError(f"{path}: damaged {key} metadata (not a short line of text)")


# Every ssl_vsr.* key a file of ours can carry, with its check (the spec is parsed by ``parse_spec``). A key that
# ``export`` starts writing must be added here: the export's own check reads the written file back through this.
_META_CHECKS: dict[str, Callable[[str, str, Path], Any]] = {
    FORMAT_KEY: _one_of(lambda: (FORMAT,)),
    "ssl_vsr.version": _one_of(lambda: (FORMAT_VERSION,)),
    "ssl_vsr.spec": lambda value, key, path: parse_spec(value, path),
    "ssl_vsr.precision": _one_of(lambda: PRECISIONS),
    "ssl_vsr.flow": _one_of(_flows),
    "ssl_vsr.kept_float": _names,
    "ssl_vsr.meta": lambda value, key, path: _json(value, key, path, dict, finite=False),   # provenance, as saved
    "ssl_vsr.int8_drop_db": _number,
    "ssl_vsr.max_drop_db": _number,
    "ssl_vsr.int8_fidelity_db": _number,
    "ssl_vsr.int8_fidelity_lr_db": _number,
    "ssl_vsr.int8_judged_drop_db": _number,
    "ssl_vsr.int8_reference": _text,
    "ssl_vsr.heldout": lambda value, key, path: _json(value, key, path, list),    # compress's held-out judgement
}
_REQUIRED = (FORMAT_KEY, "ssl_vsr.version", "ssl_vsr.spec", "ssl_vsr.precision")


def check_metadata(proto: Any, path: Path) -> tuple[dict[str, str], ArchSpec]:
    """The ``ssl_vsr.*`` metadata (every key known, present once and well-formed) and the spec it holds."""
    entries = list(proto.metadata_props)
    if len(entries) > MAX_META_ENTRIES:
        raise ForeignModelError(f"{path}: {len(entries)} metadata entries, more than a file of ours has")
    meta: dict[str, str] = {}
    for entry in entries:
        if entry.key in meta:
            raise ForeignModelError(f"{path}: metadata key {_quote(entry.key)} appears twice")
        meta[entry.key] = entry.value
    if meta.get(FORMAT_KEY) != FORMAT:
        raise ForeignModelError(f"{path}: an ONNX model not exported by this tool (no {FORMAT_KEY} metadata); "
                                f"sr/eval run only .onnx files written by `export`")
    for key, value in meta.items():
        if not key.startswith("ssl_vsr."):
            continue                            # others' annotations: never read
        if key not in _META_CHECKS:
            raise ForeignModelError(f"{path}: unknown metadata key {_quote(key)} (not written by this tool)")
        if len(value) > MAX_META_CHARS:
            raise ForeignModelError(f"{path}: metadata {key} is {len(value):,} characters, more than a file of "
                                    f"ours holds")
        _META_CHECKS[key](value, key, path)
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise ForeignModelError(f"{path}: damaged model (no {', '.join(missing)} metadata)")
    return meta, parse_spec(meta["ssl_vsr.spec"], path)


# -- tensors ----------------------------------------------------------------------------------------------------
def _graphs(proto: Any) -> Iterator[Any]:
    """The main graph and every subgraph (Scan bodies and any other), without recursion."""
    stack = [proto.graph]
    while stack:
        graph = stack.pop()
        yield graph
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _tensors(proto: Any, path: Path) -> Iterator[Any]:
    """Every dense tensor the file stores: initializers and node attributes, in every graph."""
    for graph in _graphs(proto):
        if len(graph.sparse_initializer):
            raise ForeignModelError(f"{path}: holds sparse initializers, which no file of ours has")
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("sparse_tensor") or len(attr.sparse_tensors):
                    raise ForeignModelError(f"{path}: node {_quote(node.name)} holds a sparse tensor, which no "
                                            f"file of ours has")
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors


def _external(tensor: Any) -> str | None:
    """Where a tensor's values are kept outside the file, or None when they are inside it."""
    from onnx import TensorProto

    if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        return location or "an unnamed file"
    return None


def _finite(tensor: Any) -> bool:
    from onnx import TensorProto, numpy_helper

    floats = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16,
              TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E4M3FNUZ, TensorProto.FLOAT8E5M2, TensorProto.FLOAT8E5M2FNUZ}
    if tensor.data_type not in floats:
        return True
    values = numpy_helper.to_array(tensor)
    if values.dtype not in (np.float16, np.float32, np.float64):      # bfloat16 / float8 (ml_dtypes)
        values = values.astype(np.float32)
    return bool(np.isfinite(values).all())


def check_tensors(proto: Any, path: Path) -> None:
    """Refuse weights kept in other files (external data) and weights or attributes that are NaN or infinite."""
    for tensor in _tensors(proto, path):
        where = _external(tensor)
        if where is not None:
            raise ForeignModelError(f"{path}: refused, tensor {_quote(tensor.name)} keeps its values in another "
                                    f"file ({_quote(where)}); a file written by `export` holds all its weights")
        try:
            finite = _finite(tensor)
        except (ValueError, TypeError) as e:
            raise ForeignModelError(f"{path}: damaged tensor {_quote(tensor.name)} ({str(e)[:80]})") from None
        if not finite:
            raise ForeignModelError(f"{path}: tensor {_quote(tensor.name)} holds NaN or infinite values; refused")
    for graph in _graphs(proto):
        for node in graph.node:
            for attr in node.attribute:
                if not all(math.isfinite(v) for v in (attr.f, *attr.floats)):
                    raise ForeignModelError(f"{path}: node {_quote(node.name)} has a NaN or infinite attribute "
                                            f"{_quote(attr.name)}; refused")


# -- structure --------------------------------------------------------------------------------------------------
def _body_inputs(spec: ArchSpec) -> dict[str, set[str]]:
    """Scan node name → the input names its body (a step graph of ours) takes."""
    if spec.bidirectional:
        return {SCAN_NODES["backward"]: set(BACKWARD_IO[0]), SCAN_NODES["forward"]: set(FORWARD_IO[0])}
    return {SCAN_NODES["forward"]: set(UNI_IO[0])}


def check_structure(proto: Any, spec: ArchSpec, path: Path) -> None:
    """Refuse a graph not shaped as ``export`` writes it: operators outside the standard ONNX domain, local
    functions or training graphs, subgraphs anywhere but our Scan loops, other inputs, outputs or loops."""
    if any(o.domain not in STANDARD_DOMAINS for o in proto.opset_import):
        domain = next(o.domain for o in proto.opset_import if o.domain not in STANDARD_DOMAINS)
        raise ForeignModelError(f"{path}: uses operators of domain {_quote(domain)}; files of ours use standard "
                                f"ONNX operators only")
    if len(proto.functions) or len(proto.training_info):
        raise ForeignModelError(f"{path}: holds local functions or training graphs, which no file of ours has")
    from onnx import defs

    for graph in _graphs(proto):
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS or not defs.has(node.op_type):
                raise ForeignModelError(f"{path}: operator {_quote(node.op_type)} of domain {_quote(node.domain)} "
                                        f"is not a standard ONNX operator")
    g = proto.graph
    if [i.name for i in g.input] != ["lr"] or [o.name for o in g.output] != ["sr"]:
        raise ForeignModelError(f"{path}: damaged model (its graph does not take 'lr' and give 'sr')")
    expected = _body_inputs(spec)
    found = {}
    for node in g.node:
        bodies = [a for a in node.attribute if a.HasField("g") or len(a.graphs)]
        if not bodies:
            continue
        if node.op_type != "Scan" or node.name not in expected or node.name in found or len(bodies) != 1 \
                or bodies[0].name != "body" or not bodies[0].HasField("g"):
            raise ForeignModelError(f"{path}: damaged model (an unexpected subgraph in node {_quote(node.name)})")
        found[node.name] = bodies[0].g
    if set(found) != set(expected):
        raise ForeignModelError(f"{path}: damaged model (expected the loops {', '.join(sorted(expected))}, found "
                                f"{', '.join(sorted(found)) or 'none'})")
    for name, body in found.items():
        if {i.name for i in body.input} != expected[name] or len(body.output) != 3:
            raise ForeignModelError(f"{path}: damaged model (the step graph of {name} has other inputs or outputs "
                                    f"than a step of ours)")
        if any(a.HasField("g") or len(a.graphs) for n in body.node for a in n.attribute):
            raise ForeignModelError(f"{path}: damaged model (a subgraph inside the step graph of {name})")


def check_model(proto: Any, path: Path) -> tuple[dict[str, str], ArchSpec]:
    """All the checks, cheapest first, then ONNX's own checker; returns the metadata and the spec."""
    meta, spec = check_metadata(proto, path)
    check_structure(proto, spec, path)
    check_tensors(proto, path)
    import onnx

    try:
        onnx.checker.check_model(proto)
    except Exception as e:  # onnx raises ValidationError and others; all mean "damaged"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ForeignModelError(f"{path}: damaged model (ONNX checker: {first[:160]})") from None
    return meta, spec

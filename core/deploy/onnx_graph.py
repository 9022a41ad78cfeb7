"""ONNX graphs of the network: one graph per recurrent step (dynamo exporter, symbolic batch, height and width),
and the whole-clip graph that runs those steps in ONNX ``Scan`` loops over any number of frames.

Why Scan: torch.export traces Python, so the frame loop of ``BasicVSR.forward`` is unrolled for the traced clip
length; a frame count never becomes a symbolic dimension. The steps have no loop and export once for every size;
``Scan`` (a standard ONNX op every runtime runs) is the loop. The step graphs sit unchanged as the Scan bodies, so
the file also holds the step models for online use (``runtime.load_stepper`` takes them out again).
"""
from __future__ import annotations

import json
import logging
import warnings
from typing import Any, Mapping

import torch
from torch.export import Dim

from ..models.basicvsr import BasicVSR
from .steps import BACKWARD_IO, FLOW_IO, FORWARD_IO, NEIGHBOUR, UNI_IO, Flow, example_inputs, prop_modules

OPSET = 18
FORMAT_KEY = "ssl_vsr.format"
FORMAT = "ssl-vsr-onnx"
FORMAT_VERSION = "1"
PRECISIONS = ("fp32", "int8")      # what a file of ours can declare (and export can write)
SCAN_NODES = {"backward": "backward_scan", "forward": "forward_scan"}
# The range torch.export is told the symbolic height/width dims take while tracing. Not a frame-size limit: those
# are ``core.io.limits``'s alone, checked by every reader before a frame reaches any network.
EXPORT_DIM_MAX = 8192


def _dynamic_shapes(names: tuple[str, ...]) -> dict[str, dict[int, Dim]]:
    n = Dim("batch", min=1, max=64)
    h, w = Dim("height", min=2, max=EXPORT_DIM_MAX), Dim("width", min=2, max=EXPORT_DIM_MAX)
    return {name: {0: n, 2: h, 3: w} for name in names}


def _export_module(module: torch.nn.Module, inputs: tuple[str, ...], outputs: tuple[str, ...],
                   example: tuple[torch.Tensor, ...], opset: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(module.eval(), example, dynamo=True, opset_version=opset,
                                    input_names=list(inputs), output_names=list(outputs),
                                    dynamic_shapes=_dynamic_shapes(inputs), verbose=False)
    proto = program.model_proto
    if proto.functions:
        raise RuntimeError("an exported graph still holds local functions; it cannot be embedded in a Scan")
    del proto.metadata_props[:]
    return proto


def compose_step(flow: Any, prop: Any, neighbour: str, name: str) -> Any:
    """One step graph: the flow graph fed (``x_t``, neighbour frame), its output into the propagation graph."""
    import onnx
    from onnx import helper

    f = onnx.compose.add_prefix_graph(flow.graph, "flow/", rename_inputs=False, rename_outputs=True)
    graph = type(prop.graph)()
    graph.CopyFrom(prop.graph)
    graph.name = f"{name}_step"
    neighbour_info = type(prop.graph.input[0])()
    neighbour_info.CopyFrom(next(v for v in prop.graph.input if v.name == "x_t"))
    neighbour_info.name = neighbour
    inputs = [v for v in graph.input if v.name != "flow"]
    inputs.insert(1, neighbour_info)
    del graph.input[:]
    graph.input.extend(inputs)
    nodes = [helper.make_node("Identity", ["x_t"], ["x_a"], name="flow/link_a"),
             helper.make_node("Identity", [neighbour], ["x_b"], name="flow/link_b"),
             *f.node, helper.make_node("Identity", ["flow/flow"], ["flow"], name="flow/link_out"), *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(f.initializer)
    graph.value_info.extend(f.value_info)
    proto = helper.make_model(graph, opset_imports=list(prop.opset_import), producer_name="ssl-vsr-explorer")
    proto.ir_version = prop.ir_version
    onnx.checker.check_model(proto)
    return proto


@torch.no_grad()
def export_step_graphs(model: BasicVSR, opset: int = OPSET) -> dict[str, Any]:
    """Branch name → onnx.ModelProto of each step of ``model`` (in running order), symbolic N, H and W.

    SpyNet is traced once and joined to each branch's propagation graph (see ``core.deploy.steps``).
    """
    (fin, fout) = FLOW_IO
    flow = _export_module(Flow(model), fin, fout, example_inputs(model, fin, 40, 52), opset)
    graphs = {}
    for name, (module, (inputs, outputs)) in prop_modules(model).items():
        prop = _export_module(module, inputs, outputs, example_inputs(model, inputs, 40, 52), opset)
        graphs[name] = compose_step(flow, prop, NEIGHBOUR[name], name)
    return graphs


def _body(step: Any, states: tuple[str, ...], scans: tuple[str, ...], state_outs: tuple[str, ...],
          scan_outs: tuple[str, ...]) -> Any:
    """A Scan body from a step graph: inputs reordered states-then-scans, outputs copied by Identity nodes.

    ``state_outs``/``scan_outs`` name the step outputs (or inputs, for a frame passed on as the next
    neighbour) that become the body's state and scan outputs.
    """
    from onnx import helper

    graph = type(step.graph)()
    graph.CopyFrom(step.graph)
    graph.name = f"{graph.name or 'step'}_body"
    by_name = {v.name: v for v in graph.input}
    ordered = [by_name[n] for n in states + scans]
    del graph.input[:]
    graph.input.extend(ordered)
    typed = {v.name: v for v in list(graph.input) + list(graph.output)}
    outs = []
    for i, src in enumerate(state_outs + scan_outs):
        dst = f"body_out_{i}_{src}"
        graph.node.append(helper.make_node("Identity", [src], [dst], name=f"copy_{dst}"))
        info = type(typed[src])()
        info.CopyFrom(typed[src])
        info.name = dst
        outs.append(info)
    del graph.output[:]
    graph.output.extend(outs)
    return graph


def assemble_clip_model(model: BasicVSR, steps: Mapping[str, Any], metadata: Mapping[str, str]) -> Any:
    """The whole-clip model ``lr (N,T,3,H,W) → sr (N,T,3,4H,4W)`` with the steps as ``Scan`` bodies."""
    import onnx
    from onnx import TensorProto, helper

    c = model.num_feat
    nodes = [
        helper.make_node("Transpose", ["lr"], ["clip_frames"], perm=[1, 0, 2, 3, 4], name="frames_first"),
        helper.make_node("Gather", ["clip_frames", "clip_i0"], ["clip_first"], axis=0, name="first_frame"),
        helper.make_node("Shape", ["clip_first"], ["clip_shape"], name="frame_shape"),
        helper.make_node("Slice", ["clip_shape", "clip_i0_1d", "clip_i1_1d"], ["clip_n"], name="batch_dim"),
        helper.make_node("Slice", ["clip_shape", "clip_i2_1d", "clip_i4_1d"], ["clip_hw"], name="size_dims"),
        helper.make_node("Concat", ["clip_n", "clip_c", "clip_hw"], ["clip_state_shape"], axis=0,
                         name="state_shape"),
        helper.make_node("ConstantOfShape", ["clip_state_shape"], ["clip_h0"],
                         value=helper.make_tensor("zero", TensorProto.FLOAT, [1], [0.0]), name="zero_state"),
    ]
    consts = [helper.make_tensor("clip_i0", TensorProto.INT64, [], [0]),
              helper.make_tensor("clip_ilast", TensorProto.INT64, [], [-1]),
              helper.make_tensor("clip_i0_1d", TensorProto.INT64, [1], [0]),
              helper.make_tensor("clip_i1_1d", TensorProto.INT64, [1], [1]),
              helper.make_tensor("clip_i2_1d", TensorProto.INT64, [1], [2]),
              helper.make_tensor("clip_i4_1d", TensorProto.INT64, [1], [4]),
              helper.make_tensor("clip_c", TensorProto.INT64, [1], [c])]
    forward_scans = ["clip_frames"]
    if model.spec.bidirectional:
        nodes.append(helper.make_node("Gather", ["clip_frames", "clip_ilast"], ["clip_last"], axis=0,
                                      name="last_frame"))
        body = _body(steps["backward"], ("x_next", "h_next"), ("x_t",), ("x_t", "h_t"), ("h_t",))
        nodes.append(helper.make_node("Scan", ["clip_last", "clip_h0", "clip_frames"],
                                      ["clip_b_x", "clip_b_h", "clip_hb"], name=SCAN_NODES["backward"], body=body,
                                      num_scan_inputs=1, scan_input_directions=[1], scan_output_directions=[1]))
        forward_scans.append("clip_hb")
        fwd = _body(steps["forward"], ("x_prev", "h_prev"), ("x_t", "h_b"), ("x_t", "h_t"), ("sr_t",))
    else:
        fwd = _body(steps["forward"], ("x_prev", "h_prev"), ("x_t",), ("x_t", "h_t"), ("sr_t",))
    nodes.append(helper.make_node("Scan", ["clip_first", "clip_h0", *forward_scans],
                                  ["clip_f_x", "clip_f_h", "clip_sr"], name=SCAN_NODES["forward"], body=fwd,
                                  num_scan_inputs=len(forward_scans)))
    nodes.append(helper.make_node("Transpose", ["clip_sr"], ["sr"], perm=[1, 0, 2, 3, 4], name="batch_first"))
    dims = ["batch", "frames", 3, "height", "width"]
    graph = helper.make_graph(
        nodes, "basicvsr_clip",
        [helper.make_tensor_value_info("lr", TensorProto.FLOAT, dims)],
        [helper.make_tensor_value_info("sr", TensorProto.FLOAT, ["batch", "frames", 3, "height_x4", "width_x4"])],
        initializer=consts)
    first = next(iter(steps.values()))
    proto = helper.make_model(graph, opset_imports=list(first.opset_import), producer_name="ssl-vsr-explorer")
    proto.ir_version = first.ir_version
    set_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    return proto


def set_metadata(proto: Any, metadata: Mapping[str, str]) -> None:
    """Mark a model as ours (``ssl_vsr.format``) and store the spec and provenance, all as strings."""
    del proto.metadata_props[:]
    for key, value in {FORMAT_KEY: FORMAT, "ssl_vsr.version": FORMAT_VERSION, **metadata}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value, default=str)


def with_metadata(data: bytes, extra: Mapping[str, str]) -> bytes:
    """A serialized model of ours with ``extra`` keys added to its metadata: what was measured on the file after it
    was built (its graph and weights stay byte for byte what was verified)."""
    import onnx

    proto = onnx.load_from_string(data)
    for key, value in extra.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def base_metadata(model: BasicVSR, precision: str, meta: Mapping[str, Any] | None = None,
                  kept_float: tuple[str, ...] = (), flow: str = "full") -> dict[str, str]:
    """The metadata every file of ours carries: spec (to rebuild the reference), precision, SpyNet's resolution
    and provenance."""
    return {"ssl_vsr.spec": json.dumps(model.spec.to_json()), "ssl_vsr.precision": precision,
            "ssl_vsr.flow": flow,
            "ssl_vsr.kept_float": json.dumps(list(kept_float)),
            "ssl_vsr.meta": json.dumps({k: v for k, v in dict(meta or {}).items() if k != "plan"}, default=str)}


def steps_from_clip(proto: Any, bidirectional: bool) -> dict[str, Any]:
    """The standalone step graphs of a whole-clip model of ours (inverse of ``assemble_clip_model``).

    The Scan bodies are the step graphs with their inputs reordered and their outputs copied; undoing both gives
    graphs with the names and order ``core.deploy.steps.step_io`` describes (for re-quantizing a written file).
    """
    from onnx import helper

    ios = {"backward": BACKWARD_IO, "forward": FORWARD_IO} if bidirectional else {"forward": UNI_IO}
    out = {}
    for node in proto.graph.node:
        name = next((n for n, scan in SCAN_NODES.items() if node.name == scan), None)
        if node.op_type != "Scan" or name not in ios:
            continue
        graph = type(proto.graph)()
        graph.CopyFrom(next(a.g for a in node.attribute if a.name == "body"))
        inputs, outputs = ios[name]
        typed = {v.name: v for v in graph.input}
        for o in graph.output:      # a copied output "body_out_<i>_<src>" carries the type of <src>
            src = o.name.split("_", 3)[3]
            if src not in typed:
                info = type(o)()
                info.CopyFrom(o)
                info.name = src
                typed[src] = info
        kept = [n for n in graph.node if not n.name.startswith("copy_body_out_")]
        del graph.node[:]
        graph.node.extend(kept)
        ordered = [typed[n] for n in inputs]
        del graph.input[:]
        graph.input.extend(ordered)
        del graph.output[:]
        graph.output.extend(typed[n] for n in outputs)
        model = helper.make_model(graph, opset_imports=list(proto.opset_import))
        model.ir_version = proto.ir_version
        out[name] = model
    return out

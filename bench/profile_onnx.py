"""Where an exported file spends its time in onnxruntime: per operator type and per network part, on real frames.

    python bench/profile_onnx.py FILE.onnx [--frames 5] [--threads 2]

onnxruntime's own profiler times every kernel of one run of the whole clip (Vid4 calendar LR frames, after one
warm-up run). The ``Scan`` loops only contain the rest, so they are left out of the shares. Convolutions (float
``Conv``/``FusedConv`` or int8 ``QLinearConv``) are attributed to the layer whose weights they read: SpyNet, the
trunks' residual blocks, the trunks' input convs, and the ×4 head each in turn. ms are per frame of that one run,
first frame included.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

from common import SHARED, print_table  # noqa: E402  (puts the repo on sys.path)

import numpy as np  # noqa: E402

from core.deploy.runtime import read_onnx, step_models  # noqa: E402
from core.io.frames import read_clip  # noqa: E402

CONV_OPS = {"Conv", "FusedConv", "QLinearConv"}


def conv_parts(proto) -> dict[str, str]:
    """Conv node name (as in the Scan bodies) → the part of the network its weights belong to."""
    parts = {}
    for body in step_models(proto).values():
        producers = {out: node for node in body.graph.node for out in node.output}
        for node in body.graph.node:
            if node.op_type != "Conv":
                continue
            weight = node.input[1]
            while weight in producers and producers[weight].op_type == "DequantizeLinear":
                weight = producers[weight].input[0]
            parts[node.name] = _part(weight.removeprefix("flow/").removeprefix("model."))
    return parts


def _part(layer: str) -> str:
    if layer.startswith("spynet"):
        return "SpyNet (flow)"
    if ".main.2." in layer:
        return "trunk residual blocks"
    if ".main.0" in layer:
        return "trunk input convs"
    return f"head {layer.split('.')[0]}"


def profile(path: Path, frames: np.ndarray, threads: int) -> tuple[list[dict], float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_profiling = True
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="ssl-vsr-profile-") as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        clip = (frames.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)[None]
        for _ in range(2):          # a warm-up run, then the one reported
            session.run(["sr"], {"lr": clip})
        events = json.loads(Path(session.end_profiling()).read_text())
    runs = [e for e in events if e.get("name") == "model_run"]
    last_start = runs[-1]["ts"]
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
               and e["ts"] >= last_start and e["args"].get("op_name") != "Scan"]
    return kernels, runs[-1]["dur"] / 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    clip_dir = SHARED / "data" / "vid4" / "calendar" / "BIx4"
    if not clip_dir.is_dir():
        print(f"needs {clip_dir}")
        return 1
    proto, _ = read_onnx(a.file)
    parts = conv_parts(proto)
    frames = read_clip(clip_dir, max_frames=a.frames).frames
    kernels, run_ms = profile(a.file, frames, a.threads)
    by_op, by_part = collections.Counter(), collections.Counter()
    for k in kernels:
        op, node = k["args"]["op_name"], k["name"].removesuffix("_kernel_time")
        by_op[op] += k["dur"]
        if op in CONV_OPS:
            name = next((n for n in (node, node.rsplit("_token_", 1)[0]) if n in parts), None)
            by_part[parts[name] if name else "convs not traced to a layer"] += k["dur"]
        else:
            by_part[f"other: {op}"] += k["dur"]
    total = sum(by_op.values())
    n = len(frames)
    print(f"{a.file.name}: {n} calendar frames {frames.shape[1]}x{frames.shape[2]} (HxW), {a.threads} threads; run "
          f"{run_ms:.0f} ms ({run_ms / n:.0f} ms/frame), kernels {total / 1e3:.0f} ms")
    print_table(["operator", "ms/frame", "share"], [[op, f"{d / 1e3 / n:.1f}", f"{100 * d / total:.1f} %"]
                                                     for op, d in by_op.most_common(12)])
    print()
    convs = [(p, d) for p, d in by_part.most_common() if not p.startswith("other: ")]
    print_table(["convolutions of", "ms/frame", "share"], [[p, f"{d / 1e3 / n:.1f}", f"{100 * d / total:.1f} %"]
                                                            for p, d in convs])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

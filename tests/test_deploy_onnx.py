"""Dynamic ONNX exports: any frames/height/width, step models equal to PyTorch's steps, streamed `sr` on a file.

One tiny network per variant is traced once per module (the trace dominates: minutes on a busy 2-core CPU).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from core.deploy.onnx_export import VERIFY_SHAPES, deploy_copy, export_onnx, max_diff_at  # noqa: E402
from core.deploy.onnx_graph import export_step_graphs  # noqa: E402
from core.deploy.runtime import OnnxStepper, load_clip, load_network, load_stepper  # noqa: E402
from core.ssl import compute_scores, make_plan, prune_to_plan  # noqa: E402
from core.stream import stream_frames  # noqa: E402
from tests.helpers import rss_mib, tiny_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("memo_traces")     # one ONNX trace per distinct network (tests/trace_memo.py)


def _pruned_uni():
    """BasicVSR-uni pruned at 0.5: its blocks read and write channel subsets of the stream (gathers, adds)."""
    model = tiny_model("basicvsr-uni", 8, 2)
    pruned = prune_to_plan(model, make_plan(compute_scores(model), 0.5, frame_size=(32, 32)))
    assert all(b.reads is not None and b.writes is not None for b in pruned.spec.forward_blocks)
    return pruned


@pytest.fixture(scope="module", params=["basicvsr-uni", pytest.param("basicvsr", marks=pytest.mark.slow)])
def exported(request, tmp_path_factory):
    model = _pruned_uni() if request.param == "basicvsr-uni" else tiny_model(request.param, 8, 1)
    graphs = export_step_graphs(deploy_copy(model))
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    check = export_onnx(model, path, graphs=graphs, meta={"source": "tiny"})
    return model, path, check, graphs


def test_export_is_verified_at_unseen_shapes(exported):
    model, path, check, _ = exported
    assert check.ok and check.max_abs_diff <= 1e-4 and check.shapes == VERIFY_SHAPES
    assert [p.name for p in path.parent.iterdir()] == [path.name]        # nothing staged left behind
    # Shapes the file never saw, incl. one frame count and batch the verification did not use.
    assert max_diff_at(load_clip(path), model, [(5, 33, 41), (2, 64, 96), (6, 7, 12)], seed=3) <= 1e-4
    two = torch.rand(2, 3, 3, 21, 30)
    with torch.no_grad():
        assert float((load_clip(path)(two) - model(two)).abs().max()) <= 1e-4


def test_feature_warps_are_exported_as_row_gathers(exported):
    _, _, _, graphs = exported
    for graph in graphs.values():
        ops = [(node.name.startswith("flow/"), node.op_type) for node in graph.graph.node]
        # onnxruntime's GridSample kernel is slower than four row gathers: only SpyNet's image warps (border
        # padding, 3 channels) keep it, one per pyramid level.
        assert ops.count((False, "GridSample")) == 0 and ops.count((True, "GridSample")) == 6
        assert ops.count((False, "Gather")) >= 4


def test_step_models_equal_pytorch_steps(exported):
    model, path, _, _ = exported
    stepper = load_stepper(path)
    assert isinstance(stepper, OnnxStepper) and stepper.bidirectional == model.bidirectional
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.rand(1, 3, 27, 35, generator=g), torch.rand(1, 3, 27, 35, generator=g)
    h = torch.rand(1, model.num_feat, 27, 35, generator=g)
    with torch.no_grad():
        assert torch.allclose(stepper.flow(x1, x0), model.flow(x1, x0), atol=1e-4)
        h_b = None
        if model.bidirectional:
            assert torch.allclose(stepper.backward_step(x0, x1, h), model.backward_step(x0, x1, h), atol=1e-5)
            assert torch.allclose(stepper.backward_step(x1, None, None), model.backward_step(x1, None, None),
                                  atol=1e-5)
            h_b = model.backward_step(x1, None, None)
        for args in ((x1, x0, h, h_b), (x0, None, None, h_b)):
            sr, h_t = stepper.forward_step(*args)
            ref_sr, ref_h = model.forward_step(*args)
            assert torch.allclose(sr, ref_sr, atol=1e-5) and torch.allclose(h_t, ref_h, atol=1e-5)


def test_streaming_an_exported_file_equals_pytorch(exported):
    model, path, _, _ = exported
    frames = (np.random.default_rng(0).random((5, 30, 38, 3)) * 255).astype(np.uint8)
    network = load_network(path)
    ours = list(stream_frames(network, frames, raw=True))
    ref = list(stream_frames(model, frames, raw=True))
    assert max(float((a - b).abs().max()) for a, b in zip(ours, ref)) <= 1e-4
    ours8, ref8 = np.stack(list(stream_frames(network, frames))), np.stack(list(stream_frames(model, frames)))
    assert np.abs(ours8.astype(int) - ref8.astype(int)).max() <= 1


def _smooth_frames(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Frames with structure (a drifting gradient plus noise), closer to video than white noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(t):
        base = 0.5 + 0.4 * np.sin((xx + 2 * i) / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * [1.0, 0.8, 0.6]
        out.append(np.clip(base + rng.normal(0, 0.03, (h, w, 3)), 0, 1) * 255)
    return np.stack(out).astype(np.uint8)


def test_int8_guard_keeps_the_costliest_layers_float(exported, tmp_path):
    import onnx

    from core.deploy.onnx_export import _clip_runner
    from core.deploy.onnx_graph import base_metadata, steps_from_clip
    from core.deploy.quantize import conv_layers, estimated_quality, quantize_steps
    from core.io.frames import frames_to_tensor, tensor_to_frames

    model, path, _, graphs = exported
    # The step graphs taken back out of the written file are the traced ones (re-quantizing needs no trace).
    again = steps_from_clip(onnx.load(str(path)), model.bidirectional)
    assert {k: [i.name for i in g.graph.input] for k, g in again.items()} == \
        {k: [i.name for i in g.graph.input] for k, g in graphs.items()}
    frames = _smooth_frames(4, 36, 40)
    private = deploy_copy(model)
    run = _clip_runner(private, base_metadata(private, "fp32"))
    with torch.no_grad():                                                                         # as export does
        quality = estimated_quality(lambda f: tensor_to_frames(private(frames_to_tensor(f))), frames)
    loose = quantize_steps(again, model.bidirectional, model.num_feat, frames, run, max_drop=50.0,
                           quality_db=quality)
    assert loose.kept_float == () and len(loose.trials) == 1 and loose.drop != 0.0
    # A budget no int8 model can meet (it would have to be 1 dB better than float): the guard keeps the layers
    # float in the measured order, 1, 2, 4 ... at a time, until every measured layer is float.
    tight = quantize_steps(again, model.bidirectional, model.num_feat, frames, run, max_drop=-1.0,
                           quality_db=quality)
    kept_counts = [k for k, _ in tight.trials]
    assert kept_counts[:3] == [0, 1, 2] and kept_counts == sorted(kept_counts) and len(tight.kept_float) > 2
    every_conv = {layer for g in again.values() for layer in conv_layers(g).values()}
    assert set(tight.costs) == every_conv          # conv+ReLU pairs the quantizer fuses are measured too
    ranked = sorted(tight.costs, key=tight.costs.get, reverse=True)
    assert list(tight.kept_float) == ranked[:len(tight.kept_float)]          # costliest first, as measured
    check = export_onnx(model, tmp_path / "q.onnx", precision="int8", calib=frames, max_drop=50.0, graphs=graphs)
    assert check.ok and check.precision == "int8" and check.psnr_drop == pytest.approx(loose.drop, abs=1e-6)
    stepper = load_stepper(tmp_path / "q.onnx")
    assert stepper.precision == "int8" and stepper.kept_float == ()


def test_sr_command_runs_an_exported_file_like_pytorch(exported, tmp_path):
    from core.cli import main
    from core.io.checkpoint import save_model
    from core.io.frames import read_clip
    from tests.conftest import shared_path

    model, path, _, _ = exported
    clip = shared_path("data", "vid4", "calendar", "BIx4")
    pth = save_model(model, tmp_path / "m.pth")
    assert main(["sr", str(path), str(clip), str(tmp_path / "onnx_out"), "--max-frames", "3"]) == 0
    assert main(["sr", str(pth), str(clip), str(tmp_path / "torch_out"), "--max-frames", "3"]) == 0
    ours, ref = read_clip(tmp_path / "onnx_out").frames, read_clip(tmp_path / "torch_out").frames
    assert ours.shape == ref.shape == (3, 576, 720, 3)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_uni_step_model_streams_300_frames_with_flat_memory(exported):
    """The online deployment case: an exported BasicVSR-uni file, frame by frame, memory flat over 300 frames."""
    import os

    model, path, _, _ = exported
    if model.bidirectional:
        pytest.skip("the online step model is BasicVSR-uni's")
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs Linux /proc for the resident set")
    t, h, w = 300, 40, 56
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, (h + 32, w + 32, 3), dtype=np.uint8)

    def frames():                              # a panning texture, made one frame at a time
        for i in range(t):
            y, x = (i // 3) % 32, i % 32
            yield np.ascontiguousarray(base[y:y + h, x:x + w])

    rss, last = [], None
    network = load_network(path)
    for i, sr in enumerate(stream_frames(network, frames(), t)):
        if i in (30, t - 1):
            rss.append(rss_mib())
        last = sr
    assert i == t - 1 and rss[1] - rss[0] < 16, rss
    ref = None
    for ref in stream_frames(model, frames(), t):   # PyTorch, the same 300 frames: the state carried exactly
        pass
    assert np.abs(last.astype(int) - ref.astype(int)).max() <= 1

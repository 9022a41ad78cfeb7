"""SpyNet at half resolution, the deployment option that skips its finest level: what it computes, how close it
stays to the trained flow on real frames, and that an exported file carries it (and its cost) end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.io.checkpoint import load_checkpoint
from core.io.frames import frames_to_tensor, read_clip
from core.models.spynet import FLOW_RESOLUTIONS
from tests.helpers import official

pytestmark = pytest.mark.usefixtures("memo_traces")     # one ONNX trace per distinct network (tests/trace_memo.py)


def _finest_level_calls(spynet, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, int]:
    calls = []
    hook = spynet.basic_module[-1].register_forward_hook(lambda *_: calls.append(1))
    try:
        with torch.no_grad():
            return spynet(a, b), len(calls)
    finally:
        hook.remove()


def test_half_flow_skips_the_finest_level_and_stays_close_on_real_frames(calendar_dir):
    spynet = load_checkpoint(official("REDS4")).model.spynet.eval()
    frames = frames_to_tensor(read_clip(calendar_dir / "BIx4", max_frames=2).frames)[0]
    a, b = frames[1:2], frames[0:1]
    assert spynet.resolution == "full" and FLOW_RESOLUTIONS == ("full", "half")
    full, full_calls = _finest_level_calls(spynet, a, b)
    spynet.set_resolution("half")
    half, half_calls = _finest_level_calls(spynet, a, b)
    assert (full_calls, half_calls) == (1, 0)
    assert half.shape == full.shape == (1, 2, 144, 180)
    endpoint = (half - full).norm(dim=1)
    # Calendar pans by a few pixels per frame: the half-resolution flow is the same motion to a fraction of a
    # pixel on average, but it is not the same flow (the finest level's refinement is gone).
    assert float(endpoint.mean()) < 0.25 and float(endpoint.max()) > 1e-3, (endpoint.mean(), endpoint.max())
    with pytest.raises(ValueError, match="unknown flow resolution"):
        spynet.set_resolution("quarter")


@pytest.mark.slow
def test_a_half_flow_export_is_verified_and_its_int8_drop_counts_from_full_flow(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from core.deploy.onnx_export import deploy_copy, export_onnx, max_diff_at, moving_clip
    from core.deploy.onnx_graph import export_step_graphs
    from core.deploy.quantize import consistency_reference
    from core.deploy.runtime import load_clip, load_stepper, read_onnx
    from core.io.frames import tensor_to_frames
    from tests.test_deploy_onnx import _pruned_uni, _smooth_frames

    model = _pruned_uni()
    half = deploy_copy(model, "half")
    graphs = export_step_graphs(half)
    check = export_onnx(model, tmp_path / "half.onnx", flow="half", graphs=graphs)
    assert check.ok and check.flow == "half" and "flow at half resolution" in check.summary()
    assert read_onnx(tmp_path / "half.onnx")[1]["ssl_vsr.flow"] == "half"
    run = load_clip(tmp_path / "half.onnx")
    shapes = [(3, 33, 41), (2, 70, 96)]
    assert max_diff_at(run, half, shapes, seed=5) <= 1e-4            # the file is the half-flow network ...
    stepper = load_stepper(tmp_path / "half.onnx")
    x = moving_clip(2, 45, 61, seed=2)[0]
    with torch.no_grad():
        flow, trained_flow = stepper.flow(x[1:], x[:1]), deploy_copy(model).flow(x[1:], x[:1])
        assert float((flow - half.flow(x[1:], x[:1])).abs().max()) <= 1e-4
    assert float((flow - trained_flow).abs().max()) > 1e-3           # ... whose flow is not the trained one
    assert stepper.meta["ssl_vsr.flow"] == "half"

    frames = _smooth_frames(4, 36, 40)
    q = export_onnx(model, tmp_path / "half.int8.onnx", precision="int8", calib=frames, max_drop=50.0,
                    flow="half", graphs=graphs)
    score = consistency_reference(frames)
    with torch.no_grad():
        trained = score(tensor_to_frames(deploy_copy(model)(frames_to_tensor(frames))))
    written = score(tensor_to_frames(load_clip(tmp_path / "half.int8.onnx")(frames_to_tensor(frames))))
    assert q.ok and q.flow == "half" and q.psnr_drop == pytest.approx(trained - written, abs=1e-4)
    assert np.isfinite(q.psnr_drop)

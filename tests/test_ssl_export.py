"""Pruned model files, TorchScript, ONNX and the HDF5 report: written atomically, reloaded, verified."""
import h5py
import numpy as np
import pytest
import torch

from core.io.checkpoint import load_checkpoint, save_model
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.ssl.export import example_input, export_onnx, export_torchscript, write_report_h5
from tests.helpers import tiny_model


@pytest.fixture(scope="module")
def pruned_and_plan():
    model = tiny_model("basicvsr", 16, 2)
    plan = make_plan(compute_scores(model), 0.5, frame_size=(32, 32))
    return prune_to_plan(model, plan), plan


def test_pruned_file_round_trip_is_identical(tmp_path, pruned_and_plan):
    pruned, plan = pruned_and_plan
    save_model(pruned, tmp_path / "p.pth", {"ratio": 0.5, "criterion": "l1", "source": "tiny"})
    loaded = load_checkpoint(tmp_path / "p.pth")
    x = example_input(3, 24, 24)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), pruned(x))
    assert loaded.meta["criterion"] == "l1"
    assert [p.name for p in tmp_path.iterdir()] == ["p.pth"]        # no temporary file left behind


def test_saving_with_unfolded_scale_factors_is_refused(tmp_path):
    from core.ssl import attach_scale_factors

    model = tiny_model()
    attach_scale_factors(model)
    with pytest.raises(ValueError, match="fold the scale factors"):
        save_model(model, tmp_path / "x.pth")


def test_torchscript_export_matches(tmp_path, pruned_and_plan):
    check = export_torchscript(pruned_and_plan[0], tmp_path / "m.ts", frames=3, height=32, width=32)
    assert check.ok and check.max_abs_diff <= 1e-5
    reloaded = torch.jit.load(str(tmp_path / "m.ts"))
    assert reloaded(example_input(3, 32, 32)).shape == (1, 3, 3, 128, 128)


def test_onnx_export_matches_onnxruntime(tmp_path, pruned_and_plan):
    pytest.importorskip("onnxruntime")
    check = export_onnx(pruned_and_plan[0], tmp_path / "m.onnx", frames=3, height=32, width=32)
    assert check.ok and check.max_abs_diff <= 1e-4, check.summary()


def test_h5_report_holds_the_plan(tmp_path, pruned_and_plan):
    _, plan = pruned_and_plan
    check = write_report_h5(tmp_path / "r.h5", plan, {"psnr": [30.0, 31.0]}, {"source": "tiny"})
    assert check.ok
    with h5py.File(tmp_path / "r.h5", "r") as f:
        g = f["plan"]
        assert g.attrs["after_params"] == plan.after.params and g.attrs["before_macs"] == plan.before.macs
        layer = g["layers"]["000_backward.0.in"]
        assert np.array_equal(layer["kept"][()], np.array(plan.layers[0].kept))
        assert np.allclose(layer["scores"][()], plan.layers[0].scores)
        assert list(f["metrics/psnr"][()]) == [30.0, 31.0]

"""Pruned model files and the HDF5 report: written under the output rule, reloaded, verified."""
import h5py
import numpy as np
import pytest
import torch

from core.deploy import example_input, export_as, write_report_h5
from core.io.checkpoint import load_checkpoint, save_model
from core.io.output import OutputError
from core.ssl import compute_scores, make_plan, prune_to_plan
from tests.helpers import tiny_model


@pytest.fixture(scope="module")
def pruned_and_plan():
    model = tiny_model("basicvsr", 16, 2)
    plan = make_plan(compute_scores(model), 0.5, frame_size=(32, 32))
    return prune_to_plan(model, plan), plan


def test_pruned_file_round_trip_is_identical(tmp_path, pruned_and_plan):
    pruned, _ = pruned_and_plan
    check = export_as("model", pruned, tmp_path / "p.pth", meta={"ratio": 0.5, "criterion": "l1", "source": "tiny"})
    assert check.ok and check.size_bytes == (tmp_path / "p.pth").stat().st_size
    loaded = load_checkpoint(tmp_path / "p.pth")
    x = example_input(3, 24, 24)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), pruned(x))
    assert loaded.meta["criterion"] == "l1"
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["p.pth"]
    with pytest.raises(OutputError, match="already exists"):
        export_as("model", pruned, tmp_path / "p.pth")


def test_the_model_files_check_reports_the_difference_it_measured(tmp_path, pruned_and_plan, monkeypatch):
    import core.io.checkpoint as checkpoint

    pruned, _ = pruned_and_plan
    real_load = checkpoint.load_checkpoint

    def load_nudged(path, *a, **k):             # a file that reloads 2e-7 off: within 1e-6, so it is kept
        loaded = real_load(path, *a, **k)
        with torch.no_grad():
            loaded.model.conv_last.bias.add_(2e-7)
        return loaded

    monkeypatch.setattr(checkpoint, "load_checkpoint", load_nudged)
    check = export_as("model", pruned, tmp_path / "p.pth")
    assert check.ok and check.shapes == ((3, 32, 32),)
    assert check.max_abs_diff == pytest.approx(2e-7, rel=0.3)


def test_saving_with_unfolded_scale_factors_is_refused(tmp_path):
    from core.ssl import attach_scale_factors

    model = tiny_model()
    attach_scale_factors(model)
    with pytest.raises(ValueError, match="fold the scale factors"):
        save_model(model, tmp_path / "x.pth")


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

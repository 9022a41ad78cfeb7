"""The data-driven criterion: units ranked by what they contribute on real frames, measured without changing the
network; the CLI measures it on the calibration clip (default the demo clip) and refuses --calib where it means
nothing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from core.cli import main
from core.errors import PlanError
from core.io.checkpoint import load_checkpoint, save_model
from core.io.demo import demo_clip_dir
from core.io.source import open_source
from core.ssl import attach_scale_factors, compute_scores, make_plan
from core.ssl.activity import measure_activity

from .helpers import random_clip, tiny_model


def _activity(model, seed: int = 0):
    return measure_activity(model, random_clip(4, 24, 28, seed=seed))


def test_needs_frames():
    with pytest.raises(PlanError, match="frames"):
        compute_scores(tiny_model(), "contribution")


def test_a_filter_that_never_fires_scores_zero_and_goes_first():
    model = tiny_model("basicvsr", 16, 2)
    conv1 = model.forward_trunk.main[2][1].conv1
    with torch.no_grad():             # filter 5: no input reaches it and ReLU keeps it at zero
        conv1.weight[5].zero_()
        conv1.bias[5] = -1.0
    scores = compute_scores(model, "contribution", _activity(model))
    layer = [s for l, s in zip(scores.layers, scores.per_layer) if l.name == "forward.1.mid"][0]
    assert layer[5] == 0 and layer.max() > 0
    dead = int((scores.flat == 0).sum())                  # a random network has a few dead units of its own
    plan = make_plan(scores, dead / scores.n_units)       # prune exactly the units that contribute nothing
    assert 5 in plan.layer("forward.1.mid").pruned


def test_a_stream_channel_never_written_scores_zero():
    model = tiny_model("basicvsr", 16, 2)
    conv2 = model.backward_trunk.main[2][0].conv2
    with torch.no_grad():
        conv2.weight[3].zero_()
        conv2.bias[3] = 0.0
    scores = compute_scores(model, "contribution", _activity(model))
    out = scores.per_layer[[l.name for l in scores.layers].index("backward.0.out")]
    assert out[3] == 0 and (np.delete(out, 3) > 0).all()      # a written channel always carries something


def test_measuring_changes_nothing_and_sees_through_scale_factors():
    model = tiny_model("basicvsr", 16, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = compute_scores(model, "contribution", _activity(model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    attach_scale_factors(model)          # γ = 1: the same network, the same ranking
    with_gamma = compute_scores(model, "contribution", _activity(model))
    for a, b in zip(plain.per_layer, with_gamma.per_layer):
        np.testing.assert_allclose(a, b, rtol=1e-4)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    return save_model(tiny_model("basicvsr", 16, 2), tmp_path_factory.mktemp("m") / "dense.pth")


def test_plan_measures_it_on_the_demo_clip_by_default(tiny_file, capsys):
    assert main(["plan", str(tiny_file), "--ratio", "0.3", "--criterion", "contribution", "--align", "4"]) == 0
    assert "criterion contribution" in capsys.readouterr().out


def test_calib_with_a_weight_criterion_is_refused_in_one_line(tiny_file, capsys):
    assert main(["plan", str(tiny_file), "--ratio", "0.3", "--criterion", "l1", "--calib", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--calib" in err and len(err.splitlines()) == 1


def test_prune_records_the_clip_the_criterion_was_measured_on(tiny_file, tmp_path, capsys):
    clip = tmp_path / "my_clip"
    clip.mkdir()
    for i, f in enumerate(list(open_source(demo_clip_dir() / "BIx4"))[:4]):
        cv2.imwrite(str(clip / f"{i:04d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out = tmp_path / "cut.pth"
    assert main(["prune", str(tiny_file), "--ratio", "0.3", "--criterion", "contribution", "--align", "4",
                 "--no-reconstruct", "--calib", str(clip), "--out", str(out)]) == 0
    meta = load_checkpoint(out).meta
    assert meta["criterion"] == "contribution" and meta["criterion_clip"] == "my_clip"
    assert "reconstruction" not in meta


def test_a_bad_calibration_clip_is_refused_before_any_work(tiny_file, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plan", str(tiny_file), "--ratio", "0.3", "--criterion", "contribution", "--calib",
                 str(empty)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1

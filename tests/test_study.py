"""core.study: sensitivity and sweeps on a tiny network and a tiny real clip — sane, not hard-coded results."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from core.errors import UserError
from core.events import Cancelled, Progress, RunControl, StageStarted
from core.infer import super_resolve
from core.metrics import psnr
from core.profile.cost import param_count
from core.ssl import DEFAULT_CRITERION, compute_scores, prune_to_plan
from core.study import (StudyError, SweepPoint, layer_groups, load_study, pareto_front, parse_ratios,
                        run_sensitivity, run_sweep, save_study)
from core.study.sensitivity import group_plan

from .study_support import study_model, tiny_clip


@pytest.fixture(scope="module")
def model():
    return study_model()


def test_pruning_nothing_drops_nothing(model):
    r = run_sensitivity(model, tiny_clip(frames=2), ratio=0.0, granularity="segment", criterion="l1")
    assert r.dense_psnr is not None and math.isfinite(r.dense_psnr)
    assert all(g.units_pruned == 0 and abs(g.drop) < 1e-9 for g in r.groups)
    assert {g.name for g in r.groups} == set(layer_groups(compute_scores(model), "segment"))


def test_group_plan_prunes_that_group_only(model):
    scores = compute_scores(model)
    layers = layer_groups(scores, "block")["forward.1"]
    plan = group_plan(scores, layers, 0.5, (12, 16))
    for l in plan.layers:
        expected = l.total - round(l.total * 0.5) if l.name in layers else l.total
        assert l.n_kept == expected, l.name
        if l.name in layers:      # the lowest-scoring units of that layer went
            low = set(np.argsort(l.scores, kind="stable")[:l.total - l.n_kept].tolist())
            assert low == set(l.pruned)


def test_sensitivity_scores_are_the_measured_ones(model):
    clip = tiny_clip()
    r = run_sensitivity(model, clip, ratio=0.5, only=["upconv1", "backward.0"], criterion="l1")
    scores = compute_scores(model)
    dense_out = super_resolve(model, clip.lr).frames
    dense = np.mean([psnr(a, b, 0, True) for a, b in zip(dense_out, clip.gt)])
    assert r.dense_psnr == pytest.approx(dense, abs=1e-9)
    for g in r.groups:
        net = prune_to_plan(model, group_plan(scores, list(g.layers), 0.5, (12, 16)))
        out = super_resolve(net, clip.lr).frames
        expected = np.mean([psnr(a, b, 0, True) for a, b in zip(out, clip.gt)])
        assert g.psnr == pytest.approx(expected, abs=1e-9)
        assert g.drop == pytest.approx(dense - expected, abs=1e-9)
        assert g.params_saved > 0 and g.macs_saved > 0


def test_without_gt_measures_against_the_dense_output(model):
    clip = tiny_clip(gt=False, frames=2)
    mild = run_sensitivity(model, clip, ratio=0.2, granularity="segment", criterion="l1")
    hard = run_sensitivity(model, clip, ratio=0.8, granularity="segment", criterion="l1")
    assert mild.clip.reference == "dense output" and mild.dense_psnr is None
    assert any("dense model's output" in n for n in mild.notes)
    assert all(g.drop is None for g in mild.groups)
    # More pruning moves the output further from the dense one, on average over the groups.
    assert np.mean([g.psnr for g in hard.groups]) < np.mean([g.psnr for g in mild.groups])
    assert hard.ranked()[0].psnr == min(g.psnr for g in hard.groups)


def test_sweep_costs_fall_and_fidelity_falls_with_the_ratio(model):
    events = []
    r = run_sweep(model, tiny_clip(gt=False, frames=2), ratios=[0.7, 0.2, 0.45], align=1, sink=events.append,
                  criterion="l1")
    assert [p.label for p in r.points] == ["dense", "ratio 0.2", "ratio 0.45", "ratio 0.7"]
    dense, *pruned = r.points
    assert dense.params == param_count(model.spec) and math.isinf(dense.psnr)
    assert [p.params for p in pruned] == sorted((p.params for p in pruned), reverse=True)
    assert [p.macs for p in pruned] == sorted((p.macs for p in pruned), reverse=True)
    assert pruned[0].psnr > pruned[-1].psnr
    assert all(p.ms_per_frame > 0 for p in r.points)
    assert all(abs(p.achieved_ratio - p.ratio) < 0.05 for p in pruned)
    assert isinstance(events[0], StageStarted)
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].iteration == progress[-1].total


def test_sweep_measures_an_extra_plan(model):
    from core.ssl import LayerOverride, make_plan

    clip = tiny_clip()
    plan = make_plan(compute_scores(model), 0.5, overrides={"upconv1": LayerOverride(locked=True)}, frame_size=(12, 16))
    r = run_sweep(model, clip, ratios=[0.5], align=1, extra={"current plan": plan}, criterion="l1")
    mine = r.points[-1]
    assert mine.label == "current plan" and mine.params == plan.after.params and mine.macs == plan.after.macs
    out = super_resolve(prune_to_plan(model, plan), clip.lr).frames
    assert mine.psnr == pytest.approx(np.mean([psnr(a, b, 0, True) for a, b in zip(out, clip.gt)]), abs=1e-9)


def test_sweep_measures_an_extra_network_as_it_is(model):
    """A network (the app's loaded pruned model, e.g. a trained one) is measured as given, not re-cut from a plan;
    ``network_point`` places a network measured elsewhere with the same parameters and MACs."""
    from core.ssl import make_plan
    from core.study.sweep import network_point

    clip = tiny_clip()
    net = prune_to_plan(model, make_plan(compute_scores(model), 0.4, align=1, frame_size=(12, 16)))
    r = run_sweep(model, clip, ratios=[0.5], align=1, extra={"pruned: file pruned.pth": net}, criterion="l1")
    mine = r.points[-1]
    assert mine.label == "pruned: file pruned.pth" and mine.params == param_count(net.spec)
    out = super_resolve(net, clip.lr).frames
    assert mine.psnr == pytest.approx(np.mean([psnr(a, b, 0, True) for a, b in zip(out, clip.gt)]), abs=1e-9)
    placed = network_point("x", net, model, (12, 16), mine.psnr, 5.0)
    assert (placed.params, placed.macs, placed.achieved_ratio) == (mine.params, mine.macs, mine.achieved_ratio)
    assert placed.ms_per_frame == 5.0 and placed.ratio == mine.ratio


def test_pareto_front():
    p = lambda label, macs, value: SweepPoint(label, 0.0, 0.0, 1, macs, 0, 1.0, value)
    pts = [p("a", 10, 30.0), p("b", 5, 29.0), p("c", 6, 28.0), p("d", 2, 25.0), p("e", 5, 28.5)]
    assert [pts[i].label for i in pareto_front(pts)] == ["d", "b", "a"]
    with pytest.raises(StudyError):
        pareto_front(pts, "watts")


def test_round_trip_and_refusals(model, tmp_path):
    clip = tiny_clip(gt=False, frames=2)
    sens = run_sensitivity(model, clip, ratio=0.0, only=["fusion"], criterion="l1")  # psnr inf: same as dense
    sweep = run_sweep(model, clip, ratios=[0.3], align=1, criterion="l1")
    for result in (sens, sweep):
        path = save_study(result, tmp_path / f"{result.kind}.json")
        assert load_study(path) == result
        with pytest.raises(UserError, match="already exists"):
            save_study(result, path)
    assert math.isinf(load_study(tmp_path / "sensitivity.json").groups[0].psnr)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "ssl-vsr-study", "version": 1, "kind": "sweep", "points": []}')
    with pytest.raises(StudyError, match="damaged"):
        load_study(bad)
    bad.write_text("not json")
    with pytest.raises(StudyError, match="not a study file"):
        load_study(bad)


def test_cancel_stops_the_study(model):
    control = RunControl()
    control.cancel()
    with pytest.raises(Cancelled):
        run_sweep(model, tiny_clip(), ratios=[0.5], control=control)


@pytest.mark.parametrize("text, message", [("0.3,abc", "'abc' is not a number"), ("0.3,1.2", "in \\[0, 1\\)"),
                                           ("", "no ratios"), ("nan", "in \\[0, 1\\)")])
def test_bad_ratio_strings(text, message):
    with pytest.raises(StudyError, match=message):
        parse_ratios(text)


def test_bad_study_arguments(model):
    with pytest.raises(StudyError, match="granularity"):
        run_sensitivity(model, tiny_clip(), granularity="trunk")
    with pytest.raises(StudyError, match="unknown layer group"):
        run_sensitivity(model, tiny_clip(), only=["forward.9"])
    other = study_model(seed=1)
    from core.ssl import make_plan

    from .helpers import tiny_model
    plan = make_plan(compute_scores(tiny_model("basicvsr", 16, 2)), 0.5)
    with pytest.raises(StudyError, match="different network"):
        run_sweep(other, tiny_clip(), ratios=[0.5], extra={"current plan": plan})
    assert parse_ratios("0.5, 0.3,0.5") == (0.3, 0.5)


def test_study_files_name_their_inputs_without_machine_paths(tmp_path):
    """A shared study file says which checkpoint and data, never where they lay on the machine that made it."""
    from dataclasses import replace

    from core.study import SweepResult
    from core.study.results import ClipInfo, portable_name

    deep = tmp_path / "home" / "someone" / "models"
    point = SweepPoint("dense", 0.0, 0.0, 10, 100, 5, 1.0, 30.0)
    result = SweepResult(str(deep / "BasicVSR_REDS4.pth"), ClipInfo("calendar", 2, (12, 16), "ground truth"),
                         "l1", 16, (point,), "CPU (2 threads)", 1.0,
                         training={"train_gt": str(tmp_path / "vid4" / "calendar" / "GT"), "train_lr": None})
    path = save_study(result, tmp_path / "sweep.json")
    text = path.read_text()
    assert str(tmp_path) not in text and "someone" not in text
    back = load_study(path)
    assert back.checkpoint == "BasicVSR_REDS4.pth" and back.training["train_gt"] == "calendar/GT"
    assert back == replace(result, checkpoint="BasicVSR_REDS4.pth", training=back.training)
    assert portable_name(r"C:\Users\me\m.pth") == "m.pth" and portable_name("official:REDS4") == "official:REDS4"


def test_shipped_studies_hold_no_machine_paths():
    from core.io.demo import demo_clip_dir

    root = demo_clip_dir().parents[1] / "docs" / "studies"
    files = sorted(root.glob("*.json"))
    assert files
    for f in files:
        assert not re.search(r'"(/|[A-Za-z]:\\\\)', f.read_text()), f"{f.name} holds an absolute path"
        assert load_study(f).checkpoint == "BasicVSR_REDS4.pth"


def test_centre_crop_of_the_clip_and_its_gt():
    from core.io.demo import demo_clip_dir
    from core.io.frames import read_clip
    from core.study import load_study_clip

    demo = demo_clip_dir()
    clip = load_study_clip(demo / "BIx4", demo / "GT", max_frames=2, crop=(48, 64))
    lr, gt = read_clip(demo / "BIx4", 2).frames, read_clip(demo / "GT", 2).frames
    assert clip.lr.shape == (2, 48, 64, 3) and clip.gt.shape == (2, 192, 256, 3)
    np.testing.assert_array_equal(clip.lr, lr[:, 8:56, 24:88])
    np.testing.assert_array_equal(clip.gt, gt[:, 32:224, 96:352])
    assert clip.notes == ("LR centre crop 48x64 of 64x112 (HxW)",)
    whole = load_study_clip(demo / "BIx4", None, max_frames=2, crop=(100, 500))     # larger than the clip: all
    assert whole.lr.shape == (2, 64, 112, 3) and whole.notes == ()
    with pytest.raises(StudyError, match="at least 8x8"):
        load_study_clip(demo / "BIx4", None, max_frames=2, crop=(4, 64))


def test_studies_default_to_the_default_criterion(model):
    """One default criterion everywhere (the CLI, Prune, Study): a study called without one measures units the
    way `prune` ranks them, not by weight norms."""
    clip = tiny_clip(gt=False, frames=2)
    assert run_sweep(model, clip, ratios=[0.5], align=1).criterion == DEFAULT_CRITERION
    assert run_sensitivity(model, clip, ratio=0.5, only=["fusion"]).criterion == DEFAULT_CRITERION

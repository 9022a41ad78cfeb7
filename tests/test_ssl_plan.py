"""The global criterion and the Plan: ranking, floors, locks, caps, alignment, totals, bad input."""
import numpy as np
import pytest

from core.errors import PlanError
from core.io.checkpoint import build_model
from core.models.spec import dense_spec
from core.profile.cost import param_count
from core.profile.macs import count_macs, frame_macs
from core.ssl import LayerOverride, compute_scores, make_plan, prune_to_plan
from tests.helpers import tiny_model


def uni_from(model):
    """A BasicVSR-uni made of the forward trunk and head of a bidirectional network (fusion dropped)."""
    spec = dense_spec("basicvsr-uni", model.spec.num_feat, model.spec.num_block)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("backward_trunk.", "fusion."))}
    return build_model(spec, state, "uni")


@pytest.fixture(scope="module")
def scores():
    return compute_scores(tiny_model("basicvsr", 16, 3))


def test_l1_scores_follow_the_paper(scores):
    model = tiny_model("basicvsr", 16, 3)
    w = model.forward_trunk.blocks[1].conv1.weight.detach().abs()
    by = {l.name: s for l, s in zip(scores.layers, scores.per_layer)}
    assert np.allclose(by["forward.1.mid"], w.sum((1, 2, 3)).numpy())
    assert np.allclose(by["forward.1.in"], w.sum((0, 2, 3)).numpy())
    up = model.upconv1.weight.detach().abs().sum((1, 2, 3)).view(-1, 4).sum(1)
    assert np.allclose(by["upconv1"], up.numpy())


def test_one_global_ranking(scores):
    plan = make_plan(scores, 0.4)
    flat = scores.flat
    n = int(round(flat.size * 0.4))
    pruned = np.concatenate([np.isin(np.arange(l.total), l.kept, invert=True) for l in plan.layers])
    free = np.concatenate([np.full(l.total, not l.limited) for l in plan.layers])
    assert pruned.sum() == n
    # outside layers held by their floor, nothing kept scores below a pruned unit
    assert flat[pruned].max() <= flat[~pruned & free].min()
    assert plan.threshold == flat[pruned].max()
    assert len({round(l.ratio, 3) for l in plan.layers}) > 3   # not a per-layer ratio


def test_floor_keeps_a_unit_and_the_plan_says_so(scores):
    plan = make_plan(scores, 0.95)
    assert all(l.n_kept >= 1 for l in plan.layers)
    assert any(l.limited for l in plan.layers)
    assert any("kept more than the global ranking" in n for n in plan.notes)
    plan4 = make_plan(scores, 0.95, min_keep=4)
    assert all(l.n_kept >= 4 for l in plan4.layers)


def test_lock_and_cap_overrides_move_pruning_elsewhere(scores):
    base = make_plan(scores, 0.5)
    victim = max(base.layers, key=lambda l: l.ratio).name
    locked = make_plan(scores, 0.5, overrides={victim: LayerOverride(locked=True)})
    assert locked.layer(victim).ratio == 0.0
    assert locked.units_pruned == base.units_pruned
    capped = make_plan(scores, 0.5, overrides={victim: LayerOverride(max_ratio=0.25)})
    assert capped.layer(victim).ratio <= 0.25


def test_alignment_rounds_kept_counts(scores):
    plan = make_plan(scores, 0.5, align=8)
    assert all(l.n_kept % 8 == 0 or l.n_kept == l.total for l in plan.layers)
    for layer in plan.layers:      # each layer keeps its own best-scoring units
        best = np.sort(np.argsort(-layer.scores, kind="stable")[:layer.n_kept])
        assert np.sort(layer.scores[list(layer.kept)]).tolist() == np.sort(layer.scores[best]).tolist()


def test_totals_match_the_built_network(scores):
    model = tiny_model("basicvsr", 16, 3)
    plan = make_plan(scores, 0.6, frame_size=(20, 28))
    pruned = prune_to_plan(model, plan)
    assert plan.after.params == pruned.count_parameters(False)
    assert plan.after.params_with_spynet == pruned.count_parameters(True)
    report = count_macs(pruned.spec, 20, 28)   # dispatcher-level count of the pruned network itself
    assert (plan.after.macs, plan.after.macs_spynet) == (report.network, report.spynet)
    assert plan.mac_ratio > 1


@pytest.mark.parametrize("variant", ["basicvsr", "basicvsr-uni"])
@pytest.mark.parametrize("size", [(20, 28), (33, 47), (100, 75), (65, 130), (1, 1), (180, 320)])
def test_closed_form_macs_equal_the_dispatcher_count(variant, size):
    # Odd SpyNet pyramids (100x75 -> 128x96: a 4x3 coarsest level), sizes below SpyNet's 64 px, a pruned spec.
    model = tiny_model(variant, 16, 3)
    spec = prune_to_plan(model, make_plan(compute_scores(model), 0.4)).spec
    report = count_macs(spec, *size)
    assert frame_macs(spec, *size) == (report.network, report.spynet)


def test_macs_of_full_basicvsr_match_the_paper():
    spec = dense_spec("basicvsr", 64, 30)
    macs, spynet = frame_macs(spec, 180, 320)
    assert 337e9 < macs < 339e9     # the paper: ~338 GMAC per 180x320 frame without SpyNet
    report = count_macs(spec, 180, 320)
    assert report.by_op["network/grid_sampler_2d"] > 0 and report.by_op["network/upsample_bilinear2d"] > 0
    assert "network/pixel_shuffle" in report.by_op
    assert param_count(spec) == 4_851_011


@pytest.mark.parametrize("bad, message", [
    (1.0, r"outside \[0, 1\)"), (-0.1, r"outside \[0, 1\)"), (float("nan"), "must be a number"),
    ("0.5", "must be a number"), (0.995, "above the maximum"),
])
def test_bad_ratios(scores, bad, message):
    with pytest.raises(PlanError, match=message):
        make_plan(scores, bad)


def test_bad_overrides_and_criterion(scores):
    with pytest.raises(PlanError, match="no prunable layer named 'nope'"):
        make_plan(scores, 0.5, overrides={"nope": LayerOverride(locked=True)})
    with pytest.raises(PlanError, match="max ratio 1.5"):
        make_plan(scores, 0.5, overrides={"fusion": LayerOverride(max_ratio=1.5)})
    with pytest.raises(PlanError, match="unknown criterion 'magic'"):
        compute_scores(tiny_model(), "magic")


def test_plan_is_immutable_and_json_able(scores):
    import json

    plan = make_plan(scores, 0.3)
    with pytest.raises(Exception):
        plan.layers[0].scores[0] = 1.0
    data = json.loads(json.dumps(plan.to_json()))
    assert data["layers"][0]["name"] == "backward.0.in"

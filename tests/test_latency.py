"""Latency tables and latency-aware plans: predictions add up, targets are met by the table, bad input is refused.

No test asserts a timing: the tables here come from a formula (tests/latency_support.py), except one tiny
measurement that only checks its shape and its cache.
"""
from __future__ import annotations

import json

import pytest
import torch

from core.errors import PlanError
from core.models.spec import dense_spec
from core.profile.latency import LatencyTable, latency_table, table_key, table_path
from core.ssl import LayerOverride, compute_scores, plan_from_json, plan_with, prune_to_plan
from core.ssl.target import fastest_ms, plan_for_latency, predicted_ms
from tests.helpers import tiny_model
from tests.latency_support import synthetic_table


@pytest.fixture(scope="module")
def model():
    return tiny_model("basicvsr", 16, 2)


@pytest.fixture(scope="module")
def scores(model):
    return compute_scores(model)


def test_prediction_is_fixed_plus_blocks_plus_head():
    t = synthetic_table()
    spec = dense_spec("basicvsr", 16, 2)
    blocks = sum(t.block_ms(16, b.mid, 16, 16) for trunk in ("backward", "forward") for b in spec.trunk_blocks(trunk))
    head = t.head_ms(spec.fusion, spec.upconv1, spec.upconv2, spec.conv_hr, 16)
    assert t.predict_ms(spec) == pytest.approx(t.fixed_ms + blocks + head)
    # interpolation hits the samples exactly; between them it pays the off-grid slowdown
    assert t.conv_ms(32, 48) == pytest.approx(t.k3[1][2])
    mid = (t.k3[1][2] + t.k3[1][3]) / 2
    assert t.conv_ms(32, 56) == pytest.approx(mid * t.offgrid_out)


def test_narrower_networks_are_predicted_faster(scores):
    t = synthetic_table()
    from core.ssl import make_plan
    # on the grid (widths off it pay the off-grid slowdown, which can make a narrower plan slower)
    times = [t.predict_ms(make_plan(scores, r, align=16).spec_after) for r in (0.0, 0.3, 0.6, 0.9)]
    assert times == sorted(times, reverse=True) and times[0] > times[-1]


def test_target_is_met_by_the_prediction_and_keeps_widths_on_the_grid(scores):
    t = synthetic_table()
    dense = t.predict_ms(scores.spec)
    fastest = fastest_ms(scores, t)
    assert fastest < dense
    for target in (dense * 0.95, (dense + fastest) / 2, fastest * 1.02):
        plan = plan_for_latency(scores, t, target, frame_size=(16, 16))
        assert predicted_ms(plan, t) <= target + 1e-9
        assert plan.settings.widths
        # head layers 64 wide step by 16: their widths stay multiples of 16
        assert all(l.n_kept % 16 == 0 for l in plan.layers if l.total == 64)
        assert any(str(round(target)) in n for n in plan.notes)
    # a looser target never prunes more
    loose = plan_for_latency(scores, t, dense * 0.95)
    tight = plan_for_latency(scores, t, (dense + fastest) / 2)
    assert loose.units_pruned <= tight.units_pruned


def test_a_target_the_dense_network_meets_keeps_it_dense(scores):
    t = synthetic_table()
    plan = plan_for_latency(scores, t, t.predict_ms(scores.spec) * 2)
    assert plan.units_pruned == 0


def test_width_plans_travel_exactly(scores, model):
    """The widths a target chose rebuild the same plan from its settings (training does this) and from JSON."""
    t = synthetic_table()
    target = (t.predict_ms(scores.spec) + fastest_ms(scores, t)) / 2
    plan = plan_for_latency(scores, t, target, overrides={"upconv2": LayerOverride(locked=True)},
                            frame_size=(16, 16))
    assert plan.layer("upconv2").n_kept == plan.layer("upconv2").total
    again = plan_with(compute_scores(model, plan.settings.criterion), plan.settings, (16, 16))
    assert [l.kept for l in again.layers] == [l.kept for l in plan.layers]
    assert plan_from_json(json.loads(json.dumps(plan.to_json(scores=True)))) == plan
    pruned = prune_to_plan(model, plan)
    assert pruned.spec == plan.spec_after


def test_unreachable_target_names_the_fastest_reachable(scores):
    t = synthetic_table()
    fastest = fastest_ms(scores, t)
    with pytest.raises(PlanError, match=r"fastest reachable is \d+ ms per frame") as e:
        plan_for_latency(scores, t, fastest / 2)
    assert f"{fastest:.0f} ms" in str(e.value)
    # locks raise the floor: what was reachable is not any more
    locked = {l.name: LayerOverride(locked=True) for l in scores.layers if l.group == "head"}
    with pytest.raises(PlanError, match="fastest reachable"):
        plan_for_latency(scores, t, fastest * 1.02, overrides=locked)


@pytest.mark.parametrize("bad", [0, -5, float("nan"), float("inf")])
def test_bad_targets(scores, bad):
    with pytest.raises(PlanError, match="positive number"):
        plan_for_latency(scores, synthetic_table(), bad)


def test_unknown_layer_in_a_target_plan(scores):
    with pytest.raises(PlanError, match=r"no prunable layer named 'fuson' \(closest: fusion"):
        plan_for_latency(scores, synthetic_table(), 10.0, overrides={"fuson": LayerOverride(locked=True)})


def test_table_for_another_network_is_refused(scores):
    with pytest.raises(PlanError, match="another width"):
        plan_for_latency(scores, synthetic_table(num_feat=32), 10.0)


def test_cached_table_is_read_not_measured(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path))
    device, size = torch.device("cpu"), (12, 20)
    key = table_key(device, size, 16, True)
    stored = synthetic_table(size, key=key)
    path = table_path(key)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(stored.to_json()))

    def no_measuring(*a, **k):
        raise AssertionError("measured although a cached table exists")

    monkeypatch.setattr("core.profile.latency.measure_table", no_measuring)
    got = latency_table(device, size, 16, True)
    assert got == stored and LatencyTable.from_json(got.to_json()) == stored


def test_measuring_a_tiny_table_caches_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path))
    # whole-network runs (SpyNet included) are what bench/bench_latency.py checks; here only their plumbing
    monkeypatch.setattr("core.profile.latency.marginal_ms", lambda model, device, size, **kw: 1e3)
    table = latency_table("cpu", (8, 8), 8, False)
    assert table.key == table_key(torch.device("cpu"), (8, 8), 8, False)
    assert all(v > 0 for row in table.k3 for v in row)
    # the skeleton's measured time minus what the table predicts for its blocks and head
    assert 0 <= table.fixed_ms < 1e3
    assert table_path(table.key).is_file()
    assert table.predict_ms(dense_spec("basicvsr-uni", 8, 1)) > 0
    assert latency_table("cpu", (8, 8), 8, False) == table      # the second call reads the file

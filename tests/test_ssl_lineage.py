"""Lineage: a "pruned" network shown next to a dense one is recognised as derived from it, or not."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.models.spec import dense_spec
from core.ssl import compute_scores, make_plan, prune_to_plan
from core.ssl.lineage import DERIVED, UNRELATED, UNVERIFIED, check_lineage, recorded_source
from tests.helpers import official, tiny_model


@pytest.fixture(scope="module")
def pair():
    dense = tiny_model("basicvsr", 16, 2)
    plan = make_plan(compute_scores(dense, "l1"), 0.5)
    return dense, plan, prune_to_plan(dense, plan)


def params(model) -> int:
    return model.count_parameters(include_spynet=False)


def test_pruned_here_from_the_plan_is_derived(pair) -> None:
    dense, plan, pruned = pair
    verdict = check_lineage(dense.spec, pruned.spec, plan_spec_before=plan.spec_before)
    assert verdict.status == DERIVED and verdict.comparable


def test_plan_for_another_network_is_unrelated(pair) -> None:
    dense, plan, pruned = pair
    other = dense_spec("basicvsr", 16, 2).with_(upconv1=32)
    verdict = check_lineage(other, pruned.spec, plan_spec_before=plan.spec_before)
    assert verdict.status == UNRELATED and "plan" in verdict.summary()


@pytest.mark.parametrize("dense, words", [
    (dense_spec("basicvsr", 64, 30), "basicvsr-uni"),          # the tiny.yaml toy next to REDS4
    (dense_spec("basicvsr-uni", 64, 2), "stream width 16"),
    (dense_spec("basicvsr-uni", 16, 4), "2 residual blocks"),
    (dense_spec("basicvsr-uni", 16, 2).with_(upconv1=8), "wider"),
])
def test_architectures_that_cannot_be_derived(dense, words) -> None:
    toy = dense_spec("basicvsr-uni", 16, 2)
    verdict = check_lineage(dense, toy, pruned_meta={"stages": ["sir"], "config": {"model": {"weights": "x.pth"}}})
    assert verdict.status == UNRELATED and not verdict.comparable
    assert words in verdict.summary() and "NOT derived" in verdict.summary()


def test_training_run_from_scratch_is_unrelated_even_with_the_same_shape(pair) -> None:
    dense, _, pruned = pair
    meta = {"stages": ["pretrain", "sir", "finetune"], "config": {"model": {"weights": None}}}
    verdict = check_lineage(dense.spec, pruned.spec, pruned_meta=meta)
    assert verdict.status == UNRELATED and "from scratch" in verdict.summary()


def test_recorded_source_decides(pair, tmp_path: Path) -> None:
    dense, _, pruned = pair
    ckpt, other = tmp_path / "dense.pth", tmp_path / "other.pth"
    ckpt.write_bytes(b"x")
    other.write_bytes(b"y")
    run_meta = {"stages": ["sir", "finetune"], "config": {"model": {"weights": str(ckpt)}}}
    assert check_lineage(dense.spec, pruned.spec, dense_path=ckpt, pruned_meta=run_meta).status == DERIVED
    wrong = check_lineage(dense.spec, pruned.spec, dense_path=other, pruned_meta=run_meta)
    assert wrong.status == UNVERIFIED and "dense.pth" in wrong.summary() and "other.pth" in wrong.summary()
    silent = check_lineage(dense.spec, pruned.spec, dense_path=ckpt, pruned_meta={})
    assert silent.status == UNVERIFIED and "does not record" in silent.summary()
    # an export made next to another dense model: what the exported model recorded wins
    export_meta = {"dense_checkpoint": str(other), "pruned_model_meta": run_meta}
    assert recorded_source(export_meta) == str(ckpt)
    assert check_lineage(dense.spec, pruned.spec, dense_path=ckpt, pruned_meta=export_meta).status == DERIVED
    # a pruned file whose only "source" is itself says nothing
    assert check_lineage(dense.spec, pruned.spec, dense_path=ckpt, pruned_path=other,
                         pruned_meta={"source": str(other)}).status == UNVERIFIED


def test_recorded_plan_totals_must_match(pair, tmp_path: Path) -> None:
    dense, plan, pruned = pair
    meta = {"source": str(tmp_path / "d.pth"), "plan": plan.to_json()}
    ok = check_lineage(dense.spec, pruned.spec, dense_params=params(dense), pruned_params=params(pruned),
                       pruned_meta=meta)
    assert ok.status != UNRELATED
    off = check_lineage(dense.spec, pruned.spec, dense_params=params(dense) + 1, pruned_params=params(pruned),
                        pruned_meta=meta)
    assert off.status == UNRELATED and "parameters" in off.summary()
    bad = check_lineage(dense.spec, pruned.spec, dense_params=params(dense), pruned_params=params(pruned) - 5,
                        pruned_meta=meta)
    assert bad.status == UNRELATED and "promises" in bad.summary()


def test_official_source_resolves_to_the_installed_file() -> None:
    path = official()
    spec = dense_spec("basicvsr", 64, 30)
    meta = {"stages": ["sir"], "config": {"model": {"weights": "official:REDS4"}}}
    assert check_lineage(spec, spec.with_(upconv1=32), dense_path=path, pruned_meta=meta).status == DERIVED

"""The plan travels intact: settings and JSON round trips, the criteria registry, CLI locks/caps/targets, and a
locked or capped layer that stays whole (or within its cap) in the network ``train`` produces."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from core.cli import main
from core.errors import ConfigError, PlanError
from core.io.checkpoint import load_checkpoint
from core.profile.latency import table_path
from core.ssl import (CRITERIA, REGISTRY, Criterion, LayerOverride, PlanSettings, compute_scores, make_plan,
                      plan_from_json, plan_with)
from core.ssl.units import prunable_layers, stream_layer_names
from core.train.config import plan_overrides, plan_settings
from core.train.pipeline import run_training
from tests.helpers import tiny_model
from tests.latency_support import keyed_synthetic_table
from tests.train_support import tiny_config, tiny_model_file

TINY_YAML = Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml"


# -- registry ------------------------------------------------------------------------------------------
def test_registry_lists_each_criterion_once_with_label_and_help():
    assert CRITERIA[0] == "l1" and {"l1", "l1-mean", "scale"} <= set(CRITERIA)
    assert all(REGISTRY[c].label and REGISTRY[c].help and REGISTRY[c].name == c for c in CRITERIA)
    with pytest.raises(PlanError, match="unknown criterion 'magic'"):
        compute_scores(tiny_model(), "magic")


def test_mean_abs_divides_l1_by_each_units_weight_count():
    model = tiny_model("basicvsr", 16, 2)
    l1, mean = compute_scores(model, "l1"), compute_scores(model, "l1-mean")
    count = {"stream-in": 16 * 9, "filter": 16 * 9, "stream-out": 16 * 9, "ps-unit": 4 * 16 * 9}
    for layer, a, b in zip(l1.layers, l1.per_layer, mean.per_layer):
        n = 2 * 16 if layer.name == "fusion" else (64 * 9 if layer.name == "conv_hr" else count[layer.kind])
        if layer.name == "upconv2":
            n = 4 * 16 * 9
        assert np.allclose(a / n, b), layer.name
    # shape no longer decides: the 1x1 fusion filters are not the first to go any more
    fusion_l1 = make_plan(l1, 0.5, align=1).layer("fusion").ratio
    fusion_mean = make_plan(mean, 0.5, align=1).layer("fusion").ratio
    assert fusion_mean < fusion_l1


def test_a_new_criterion_is_one_registry_entry(monkeypatch):
    monkeypatch.setitem(REGISTRY, "position", Criterion("position", "Position", "later units first", lambda m, l, _a:
                                                        torch.arange(l.size, 0, -1, dtype=torch.float64), "pos"))
    plan = make_plan(compute_scores(tiny_model(), "position"), 0.25, align=1)
    assert plan.criterion == "position" and all(l.kept == tuple(range(l.n_kept)) for l in plan.layers)


# -- settings and JSON ---------------------------------------------------------------------------------
def test_settings_and_plan_round_trip_with_locks_and_caps():
    model = tiny_model("basicvsr", 16, 2)
    overrides = {"fusion": LayerOverride(locked=True), "upconv1": LayerOverride(max_ratio=0.25)}
    plan = make_plan(compute_scores(model, "l1-mean"), 0.6, min_keep=2, align=4, overrides=overrides,
                     frame_size=(24, 40))
    st = plan.settings
    assert st == PlanSettings(0.6, "l1-mean", 2, 4, ("fusion",), (("upconv1", 0.25),))
    assert PlanSettings.from_json(json.loads(json.dumps(st.to_json()))) == st
    assert plan_from_json(json.loads(json.dumps(plan.to_json(scores=True)))) == plan
    light = plan_from_json(plan.to_json())            # without scores: kept units and totals still exact
    assert [l.kept for l in light.layers] == [l.kept for l in plan.layers] and light.after == plan.after
    # the config carries the same settings and rebuilds the same plan
    cfg = tiny_config(None, sir={k.split(".")[1]: v for k, v in plan_overrides(st).items()})
    assert plan_settings(cfg.sir, model.spec) == st
    again = plan_with(compute_scores(model, "l1-mean"), plan_settings(cfg.sir, model.spec), (24, 40))
    assert [l.kept for l in again.layers] == [l.kept for l in plan.layers]


def test_damaged_plan_json_is_a_plan_error():
    data = make_plan(compute_scores(tiny_model()), 0.5).to_json()
    data["layers"][0]["kept_indices"] = [999]
    with pytest.raises(PlanError, match="damaged"):
        plan_from_json(data)


# -- CLI -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dense_file(tmp_path_factory) -> Path:
    return tiny_model_file(tmp_path_factory.mktemp("fidelity") / "dense.pth", "basicvsr", 16, 2)


def test_prune_with_lock_and_cap_writes_them_into_the_file(dense_file, tmp_path, capsys):
    out = tmp_path / "p.pth"
    assert main(["prune", str(dense_file), "--ratio", "0.7", "--align", "1", "--lock", "fusion",
                 "--max-ratio", "upconv1=0.25", "--lock", "forward.1.mid", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    layers = {l["name"]: l for l in info["layers"]}
    assert [l["name"] for l in info["layers"]] == [l.name for l in prunable_layers(load_checkpoint(dense_file).spec)]
    assert layers["fusion"]["kept"] == layers["fusion"]["total"] == 16
    assert layers["forward.1.mid"]["kept"] == 16
    assert layers["upconv1"]["kept"] >= 12
    assert sum(l["kept"] for l in info["layers"]) < sum(l["total"] for l in info["layers"])
    assert info["plan_settings"]["lock"] == ["forward.1.mid", "fusion"]
    assert info["plan_settings"]["max_ratio"] == {"upconv1": 0.25}
    stored = plan_from_json(load_checkpoint(out).meta["plan"])
    assert stored.spec_after == load_checkpoint(out).spec


def test_keep_stream_prunes_only_the_inner_filters_and_the_head(dense_file, tmp_path, capsys):
    """--keep-stream locks every layer that cuts the hidden stream: those keep all their channels, the blocks'
    conv1 filters and the head are cut, and the file records the locks as a plain plan (one plan, one owner)."""
    out = tmp_path / "k.pth"
    assert main(["prune", str(dense_file), "--ratio", "0.3", "--align", "1", "--keep-stream", "--criterion", "l1",
                 "--no-reconstruct", "--out", str(out)]) == 0
    capsys.readouterr()
    spec = load_checkpoint(dense_file).spec
    stream = stream_layer_names(spec)
    assert stream and all(n.endswith((".in", ".out")) for n in stream)
    plan = plan_from_json(load_checkpoint(out).meta["plan"])
    assert set(stream) <= set(plan.settings.locks)
    assert all(plan.layer(n).ratio == 0.0 for n in stream)
    assert sum(l.total - l.n_kept for l in plan.layers if l.name not in stream) > 0
    # the config key makes the same locks for the network it is given
    cfg = tiny_config(None, sir={"keep_stream": True, "lock": ["fusion"]})
    assert set(plan_settings(cfg.sir, spec).locks) == {*stream, "fusion"}
    assert plan_settings(tiny_config(None).sir, spec).locks == ()


def test_unknown_layer_is_one_line_with_close_matches(dense_file, capsys):
    assert main(["plan", str(dense_file), "--ratio", "0.5", "--lock", "forward.0.mdi"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no prunable layer named 'forward.0.mdi'" in err and "forward.0.mid" in err
    assert main(["plan", str(dense_file), "--ratio", "0.5", "--max-ratio", "upconv=0.3"]) == 2
    err = capsys.readouterr().err
    assert "closest: " in err and "upconv1" in err


def test_latency_targets_on_the_cli(dense_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path))
    table = keyed_synthetic_table(torch.device("cpu"), (16, 16), 16, True)
    table_path(table.key).parent.mkdir(parents=True)
    table_path(table.key).write_text(json.dumps(table.to_json()))
    dense_ms = table.predict_ms(load_checkpoint(dense_file).spec)
    assert main(["plan", str(dense_file), "--target-ms", f"{dense_ms * 0.8:.3f}", "--size", "16x16", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["predicted_ms_per_frame"] <= dense_ms * 0.8 and data["settings"]["widths"]
    assert main(["plan", str(dense_file), "--target-fps", "1e9", "--size", "16x16"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no plan reaches") and "fastest reachable is" in err


# -- training ------------------------------------------------------------------------------------------
def _check_trained(run_dir: Path, locked: str, capped: str, cap: float) -> None:
    pruned = load_checkpoint(run_dir / "pruned.pth")
    widths = {l.name: l.size for l in prunable_layers(pruned.spec)}
    dense = {l.name: l.size for l in prunable_layers(load_checkpoint(run_dir / "dense.pth").spec)}
    assert widths[locked] == dense[locked]
    assert widths[capped] >= dense[capped] * (1 - cap) - 1e-9
    assert sum(widths.values()) < sum(dense.values())
    plan = plan_from_json(pruned.meta["plan"])
    assert plan.settings.locks == (locked,) and dict(plan.settings.caps) == {capped: cap}
    assert plan.spec_after == pruned.spec


def test_train_keeps_a_locked_layer_whole_and_a_cap(tmp_path, capsys):
    weights = tiny_model_file(tmp_path / "dense.pth", "basicvsr-uni", 8, 1)
    raw = yaml.safe_load(TINY_YAML.read_text())
    raw["model"] = {"weights": str(weights), "variant": "basicvsr-uni", "num_feat": 8, "num_block": 1}
    raw["stages"] = ["sir"]
    raw["data"].update({"root": str(TINY_YAML.parents[1] / "demo" / "GT"),
                        "lr_root": str(TINY_YAML.parents[1] / "demo" / "BIx4"), "clip_length": 3})
    raw["val"] = {"every": 1000}
    raw["sir"].update({"ratio": 0.7, "align": 1, "delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1,
                       "lock": ["forward.0.mid"], "max_ratio": {"conv_hr": 0.25}})
    config = tmp_path / "locked.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--device", "cpu"]) == 0
    _check_trained(tmp_path / "run", "forward.0.mid", "conv_hr", 0.25)


def test_unknown_lock_in_a_config_fails_before_training(tmp_path):
    weights = tiny_model_file(tmp_path / "dense.pth", "basicvsr-uni", 8, 1)
    cfg = tiny_config(weights, stages=["sir"], sir={"lock": ["fusion"]})      # -uni has no fusion
    with pytest.raises(ConfigError, match=r"sir plan: no prunable layer named 'fusion'"):
        run_training(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ConfigError, match=r"sir.max_ratio.conv_hr = 1.5"):
        tiny_config(weights, sir={"max_ratio": {"conv_hr": 1.5}})
    with pytest.raises(ConfigError, match=r"sir.criterion"):
        tiny_config(weights, sir={"criterion": "magic"})


def test_train_takes_the_plan_a_latency_target_printed(tmp_path, monkeypatch, capsys):
    """plan --target-ms --json > PLAN; train --plan PLAN: the trained network has exactly the planned widths."""
    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path / "cache"))
    table = keyed_synthetic_table(torch.device("cpu"), (16, 16), 8, False)
    table_path(table.key).parent.mkdir(parents=True)
    table_path(table.key).write_text(json.dumps(table.to_json()))
    weights = tiny_model_file(tmp_path / "dense.pth", "basicvsr-uni", 8, 1)
    target = table.predict_ms(load_checkpoint(weights).spec) * 0.7
    assert main(["plan", str(weights), "--target-ms", f"{target:.4f}", "--size", "16x16", "--json"]) == 0
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(capsys.readouterr().out)
    planned = plan_from_json(json.loads(plan_file.read_text()))
    assert planned.settings.widths
    raw = yaml.safe_load(TINY_YAML.read_text())
    raw["model"] = {"weights": str(weights), "variant": "basicvsr-uni", "num_feat": 8, "num_block": 1}
    raw["data"].update({"root": str(TINY_YAML.parents[1] / "demo" / "GT"),
                        "lr_root": str(TINY_YAML.parents[1] / "demo" / "BIx4"), "clip_length": 3})
    raw["val"] = {"every": 1000}
    raw["sir"].update({"ratio": 0.2, "delta": 0.05, "t1": 1, "tau": 0.1, "stabilize_iters": 1})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config), "--plan", str(plan_file), "--stages", "sir", "--run-dir",
                 str(tmp_path / "run"), "--device", "cpu"]) == 0
    pruned = load_checkpoint(tmp_path / "run" / "pruned.pth")
    assert pruned.spec == planned.spec_after
    assert dict(plan_from_json(pruned.meta["plan"]).settings.widths) == dict(planned.settings.widths)


@pytest.mark.parametrize("content, message", [
    (None, "cannot read the plan"),
    ("not json at all", "not a plan"),
    ('{"ratio": 0.5}', "not a plan"),
    ('{"settings": {"ratio": "half"}}', "plan settings are damaged"),
])
def test_a_bad_plan_file_for_train_is_one_line(tmp_path, capsys, content, message):
    plan_file = tmp_path / "plan.json"
    if content is not None:
        plan_file.write_text(content)
    assert main(["train", str(TINY_YAML), "--plan", str(plan_file), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()

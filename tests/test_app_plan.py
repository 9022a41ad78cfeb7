"""The Prune step's plan in the app: one owner, copied whole into training, whole in the trained network,
predicted time next to MACs, latency targets, and project files that bring the same plan back."""
from __future__ import annotations

import json
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from app.session import load_project  # noqa: E402
from app.widgets.layer_table import LOCK, MAX_RATIO  # noqa: E402
from core.ssl.settings import LayerOverride  # noqa: E402
from core.io.checkpoint import load_checkpoint  # noqa: E402
from core.profile.latency import table_path  # noqa: E402
from core.ssl.units import prunable_layers  # noqa: E402
from tests.latency_support import keyed_synthetic_table  # noqa: E402
from tests.test_app_gui import (configure_tiny_run, dialogs, move_slider, open_checkpoint,  # noqa: E402,F401
                                tiny_checkpoint, window)


def _override(qtbot, panel, row: int, column: int, value, role) -> None:
    model = panel.table_model
    with qtbot.waitSignal(panel.planUpdated, timeout=5000):
        assert model.setData(model.index(row, column), value, role)


def test_locked_and_capped_layers_reach_training_and_stay(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                           tmp_path: Path, dialogs) -> None:
    open_checkpoint(qtbot, window, tiny_checkpoint)
    prune, train = window.panels["prune"], window.panels["train"]
    prune.align.setCurrentIndex(0)
    prune.criterion.setCurrentIndex(prune.criterion.findData("l1-mean"))
    move_slider(qtbot, window, 0.6)
    names = [l.name for l in window.state.plan.layers]
    locked, capped = names[1], "upconv1"
    _override(qtbot, prune, 1, LOCK, Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    _override(qtbot, prune, names.index(capped), MAX_RATIO, "0.25", Qt.ItemDataRole.EditRole)
    plan = window.state.current.plan
    assert plan is window.state.plan and plan.layer(locked).ratio == 0.0 and plan.layer(capped).ratio <= 0.25
    # the Train step copies the whole plan, not only the ratio; it survives loading another config
    configure_tiny_run(window, tiny_checkpoint, tmp_path / "run", ("sir",))
    cfg = train.build_config()
    assert (cfg.sir.ratio, cfg.sir.criterion, cfg.sir.align) == (0.6, "l1-mean", 1)
    assert cfg.sir.lock == [locked] and cfg.sir.max_ratio == {capped: 0.25}
    with qtbot.waitSignal(train.runEnded, timeout=240_000) as ended:
        assert train.start() is not None
    assert ended.args == ["finished"], dialogs
    result = load_checkpoint(tmp_path / "run" / "pruned.pth")
    widths = {l.name: l.size for l in prunable_layers(result.spec)}
    total = {l.name: l.total for l in plan.layers}
    assert widths[locked] == total[locked]
    assert widths[capped] >= 0.75 * total[capped]
    assert sum(widths.values()) < sum(total.values())


def test_predicted_time_follows_the_slider_and_targets(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                       tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path))
    table = keyed_synthetic_table(torch.device("cpu"), (180, 320), 16, True)
    table_path(table.key).parent.mkdir(parents=True)
    table_path(table.key).write_text(json.dumps(table.to_json()))
    prune = window.panels["prune"]
    with qtbot.waitSignal(window.state.current.latencyChanged, timeout=60_000):
        open_checkpoint(qtbot, window, tiny_checkpoint)
    qtbot.waitUntil(lambda: window.state.current.latency is not None, timeout=60_000)
    prune.align.setCurrentIndex(3)
    move_slider(qtbot, window, 0.2)
    low = prune.totals["latency"].text()
    move_slider(qtbot, window, 0.8)
    high = prune.totals["latency"].text()
    assert "ms" in low and "×" in low and low != high
    assert "fps" in prune.latency_note.text() and "predicted for the network streamed once warm" in prune.latency_note.text()
    dense_ms = table.predict_ms(window.state.plan.spec_before)
    assert f"{dense_ms:.0f} →" in high
    # a latency target: the plan's predicted time meets it; the project file brings the same widths back
    prune.target.setValue(round(dense_ms * 0.9))
    with qtbot.waitSignal(prune.planUpdated, timeout=5000):
        prune.target_button.click()
    plan = window.state.plan
    assert plan.settings.widths and window.state.current.predicted_ms() <= round(dense_ms * 0.9)
    path = window.save_project(tmp_path / "target.sslproj")
    assert load_project(path).widths == dict(plan.settings.widths)
    move_slider(qtbot, window, 0.5)                      # leaves the target plan
    assert not window.state.plan.settings.widths
    with qtbot.waitSignal(prune.planUpdated, timeout=60_000):
        window.open_project(path)
    qtbot.waitUntil(lambda: window.state.plan.settings.widths == plan.settings.widths, timeout=60_000)
    assert [l.kept for l in window.state.plan.layers] == [l.kept for l in plan.layers]
    # a target below the fastest reachable plan says what is reachable and keeps the shown plan
    prune.target.setValue(1)
    prune.target_button.click()
    qtbot.waitUntil(lambda: "fastest reachable" in prune.totals["notes"].text(), timeout=5000)


def test_one_owner_builds_the_pruned_network_once_per_plan(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                            monkeypatch) -> None:
    import app.current_plan as owner

    builds = []
    real = owner.prune_to_plan
    monkeypatch.setattr(owner, "prune_to_plan", lambda m, p: builds.append(p) or real(m, p))
    open_checkpoint(qtbot, window, tiny_checkpoint)
    move_slider(qtbot, window, 0.5)
    current, dense = window.state.current, window.state.model.model
    a, b = current.network(dense), current.network(dense)
    assert len(builds) == 1 and a is not b and a.spec == b.spec == window.state.plan.spec_after
    x = torch.rand(1, 2, 3, 8, 8)
    with torch.no_grad():
        a.eval()(x)
        b.to(memory_format=torch.channels_last)        # one consumer's in-place change is not another's
        assert torch.allclose(current.network(dense).eval()(x), a(x))
    move_slider(qtbot, window, 0.6)
    current.network(dense)
    assert len(builds) == 2 and builds[1] is window.state.plan


def test_scale_criterion_is_greyed_out_on_a_network_without_scale_factors(qtbot, window: MainWindow,
                                                                          tiny_checkpoint: Path) -> None:
    """On a stock network ``scale`` scores every unit the same: Prune and Study offer it disabled, say why, and a
    restored plan that names it falls back to the default criterion instead of showing no plan."""
    from app.widgets.criterion_choice import offer_criteria
    from core.ssl import DEFAULT_CRITERION, attach_scale_factors

    open_checkpoint(qtbot, window, tiny_checkpoint)
    prune, study = window.panels["prune"], window.panels["study"]
    for combo in (prune.criterion, study.criterion):
        enabled = {combo.itemData(i): combo.model().item(i).isEnabled() for i in range(combo.count())}
        assert enabled.pop("scale") is False and all(enabled.values())
        assert "has none" in combo.itemData(combo.findData("scale"), Qt.ItemDataRole.ToolTipRole)
    assert window.state.scores("scale") is None and window.state.scores("l1") is not None
    prune.restore(0.5, "scale", 1, {})
    assert prune.criterion.currentData() == DEFAULT_CRITERION
    # after SIR the network has scale factors: the entry is offered again
    sir_model = load_checkpoint(tiny_checkpoint).model
    attach_scale_factors(sir_model)
    offer_criteria(prune.criterion, sir_model)
    assert prune.criterion.model().item(prune.criterion.findData("scale")).isEnabled()


def test_keep_stream_box_locks_the_stream_layers_and_follows_the_table(qtbot, window: MainWindow,
                                                                      tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Ticking "Keep the stream whole" locks exactly the stream layers (the plan keeps them whole, a lock the user
    set elsewhere stays); unticking unlocks them; a project whose locks cover the stream shows it ticked."""
    from core.ssl.units import stream_layer_names
    from core.train.config import plan_settings

    open_checkpoint(qtbot, window, tiny_checkpoint)
    prune = window.panels["prune"]
    move_slider(qtbot, window, 0.4)
    stream = stream_layer_names(window.state.model.model.spec)
    names = [l.name for l in window.state.plan.layers]
    _override(qtbot, prune, names.index("fusion"), LOCK, Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert not prune.keep_stream_box.isChecked()
    with qtbot.waitSignal(prune.planUpdated, timeout=5000):
        prune.keep_stream_box.setChecked(True)
    plan = window.state.plan
    assert set(plan.settings.locks) == {*stream, "fusion"}
    assert all(plan.layer(n).ratio == 0.0 for n in stream) and plan.achieved_ratio > 0
    # the Train step copies it as plain locks (a config's own keep_stream cleared), and says so in one phrase
    configure_tiny_run(window, tiny_checkpoint, tmp_path / "run", ("sir",))
    train = window.panels["train"]
    train.form.set_value("sir.keep_stream", False)
    window.state.planChanged.emit()
    cfg = train.build_config()
    assert cfg.sir.lock == ["fusion"] and cfg.sir.keep_stream      # the tick, not 120 names; the same plan:
    assert set(plan_settings(cfg.sir, window.state.model.model.spec).locks) == {*stream, "fusion"}
    assert "the hidden stream kept whole" in train.follow_prune.toolTip()
    assert "backward.0.in" not in train.follow_prune.toolTip()
    with qtbot.waitSignal(prune.planUpdated, timeout=5000):
        prune.keep_stream_box.setChecked(False)
    assert window.state.plan.settings.locks == ("fusion",)
    prune.restore(0.4, "l1", 1, {n: LayerOverride(locked=True) for n in stream})
    assert prune.keep_stream_box.isChecked()


def test_a_plan_remade_on_another_clip_says_that_its_cut_changed(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                                 tmp_path: Path) -> None:
    """The contribution criterion is measured on the clip: opening another clip measures it again and re-plans;
    when the new plan keeps other units than the plan the user had, the Prune step says so (never silently)."""
    from core.io.frames import write_frames
    from tests.test_compress import moving_frames

    state, prune = window.state, window.panels["prune"]
    smooth, rough = tmp_path / "smooth", tmp_path / "rough"
    write_frames(moving_frames(4, 32, 32, seed=1), smooth)
    write_frames(np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), rough)
    open_checkpoint(qtbot, window, tiny_checkpoint)
    prune.align.setCurrentIndex(prune.align.findData(1))        # any width: the ranking decides every unit
    prune.criterion.setCurrentIndex(prune.criterion.findData("contribution"))
    for clip in (smooth, rough):
        with qtbot.waitSignal(state.clipChanged, timeout=60_000):
            state.open_clip(clip)
        qtbot.waitUntil(lambda: not state.runner.running and state.plan is not None, timeout=60_000)
        if clip == smooth:
            before = state.plan
    after = state.plan
    changed = sum(a.kept != b.kept for a, b in zip(before.layers, after.layers))
    assert changed, "the two clips should rank the units differently"
    notes = prune.totals["notes"].text()
    assert f"measured again on rough, and {changed} layer(s) now keep other units" in notes, notes
    move_slider(qtbot, window, 0.4)                         # the user's own plan: nothing to say
    assert "the plan changed" not in prune.totals["notes"].text()

"""The desktop app driven through its widgets (offscreen): window, live slider, errors, the tiny pipeline."""
from __future__ import annotations

import gc
import os
import sys

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
from app.widgets.layer_table import LOCK  # noqa: E402
from core.io.checkpoint import load_checkpoint, save_model  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.weights import official_weight  # noqa: E402
from core.ssl import DEFAULT_CRITERION  # noqa: E402
from core.models.basicvsr import BasicVSR  # noqa: E402
from core.models.spec import dense_spec  # noqa: E402
from core.deploy import example_input  # noqa: E402
from core.train.state import load_state, model_from_state  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)

TINY_CONFIG = Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml"
LOAD_MS = 60_000


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny_dense.pth"
    save_model(BasicVSR(dense_spec("basicvsr", 16, 2)), path, {"note": "random tiny test model"})
    return path


def open_checkpoint(qtbot, w: MainWindow, path: Path) -> None:
    """Open a dense checkpoint and wait for its units to be scored (the frame-measured default follows the load)."""
    with qtbot.waitSignal(w.state.modelChanged, timeout=LOAD_MS):
        w.open_path(path)
    if w.state.model is not None and w.state.model.path == Path(path):       # it became the dense model
        qtbot.waitUntil(lambda: w.state.scores(DEFAULT_CRITERION) is not None, timeout=LOAD_MS)


def open_demo_clip(qtbot, w: MainWindow) -> None:
    with qtbot.waitSignal(w.state.clipChanged, timeout=LOAD_MS):
        w.open_path(demo_clip_dir())


def move_slider(qtbot, w: MainWindow, ratio: float) -> None:
    panel = w.panels["prune"]
    with qtbot.waitSignal(panel.planUpdated, timeout=5000):
        if panel.ratio.slider.value() == round(ratio * 1000):
            panel.replan()                 # already there (the plan came with the scores): show it again
        else:
            panel.ratio.slider.setValue(round(ratio * 1000))


# -- window ------------------------------------------------------------------------------------------
def test_window_opens_with_empty_state_and_workflow(window: MainWindow) -> None:
    assert window.isVisible()
    assert [window.steps.item(i).text().split()[-1] for i in range(window.steps.count())] == \
        ["Model", "Prune", "Train", "Compare", "Export", "Study"]
    assert "pip install" in window.panels["model"].hint.text()
    assert window.panels["model"].hint.isVisibleTo(window)
    assert "Device: CPU" in window.device_label.text()
    window.show_step("compare")
    assert window.stack.currentWidget() is window.panels["compare"]


@pytest.mark.skipif(official_weight("REDS4") is None, reason="official weights not installed")
def test_defaults_load_official_weights_and_demo_clip(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.state.modelChanged, timeout=LOAD_MS):
        window.load_defaults()
    assert window.state.clip is not None and window.state.clip.gt is not None
    assert window.state.model.spec.num_block == 30
    assert "BasicVSR_REDS4.pth" in window.model_label.text()
    assert "64×112" in window.panels["model"].dense_card.values["MACs / frame"].text()


def test_slider_moves_chart_and_totals(qtbot, window: MainWindow, tiny_checkpoint: Path) -> None:
    open_checkpoint(qtbot, window, tiny_checkpoint)
    panel = window.panels["prune"]
    panel.align.setCurrentIndex(0)      # exact widths: the tiny model's 16-channel layers would round to 0/8/16
    move_slider(qtbot, window, 0.2)
    heights_low, params_low = panel.chart.heights.copy(), panel.totals["params"].text()
    move_slider(qtbot, window, 0.7)
    heights_high = panel.chart.heights
    assert heights_high.mean() > heights_low.mean() + 0.3
    assert panel.totals["params"].text() != params_low
    assert abs(window.state.plan.requested_ratio - 0.7) < 1e-9
    assert abs(panel.ratio.spin.value() - 0.7) < 1e-3
    assert "kept" in panel.chart.tooltip(0) and window.state.plan.layers[0].name in panel.chart.tooltip(0)
    # overlay a pinned plan, then lock a layer through the table
    panel.pin_button.click()
    move_slider(qtbot, window, 0.4)
    assert panel.chart._overlay.isVisible()
    model = panel.table_model
    with qtbot.waitSignal(panel.planUpdated, timeout=5000):
        model.setData(model.index(1, LOCK), Qt.CheckState.Checked.value, Qt.ItemDataRole.CheckStateRole)
    assert window.state.plan.layers[1].ratio == 0.0


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from Python 3.12 on")
def test_repainting_plots_keeps_none_alive(qtbot, window: MainWindow, tiny_checkpoint: Path) -> None:
    # PySide6 6.12 dropped a reference to None on every void call (setPen, drawLine ...): on Python 3.11 a few
    # hundred slider moves deallocated None and aborted the app. pyproject.toml excludes it there.
    open_checkpoint(qtbot, window, tiny_checkpoint)
    panel = window.panels["prune"]
    window.show_step("prune")
    gc.collect()
    before = sys.getrefcount(None)
    for i in range(20):
        move_slider(qtbot, window, 0.1 + 0.04 * i)
        panel.chart.viewport().repaint()
        panel.distribution.repaint()
    gc.collect()
    assert sys.getrefcount(None) >= before - 100


def test_bad_checkpoint_shows_dialog_and_app_survives(qtbot, window: MainWindow, tmp_path: Path,
                                                       dialogs, tiny_checkpoint: Path) -> None:
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"this is not a checkpoint")
    window.state.open_checkpoint(bad)
    qtbot.waitUntil(lambda: bool(dialogs), timeout=LOAD_MS)
    kind, title, text = dialogs[0]
    assert kind == "warning" and "checkpoint" in title.lower() and "broken.pth" in text
    assert window.state.model is None and window.isVisible()
    open_checkpoint(qtbot, window, tiny_checkpoint)       # the app still works
    assert window.state.model is not None


def test_project_round_trip(qtbot, window: MainWindow, tiny_checkpoint: Path, tmp_path: Path) -> None:
    open_checkpoint(qtbot, window, tiny_checkpoint)
    move_slider(qtbot, window, 0.6)
    path = window.save_project(tmp_path / "p.sslproj")
    project = load_project(path)
    assert project.checkpoint == str(tiny_checkpoint) and abs(project.ratio - 0.6) < 1e-9
    assert project.train["run_dir"]


# -- the tiny pipeline ---------------------------------------------------------------------------------
def configure_tiny_run(w: MainWindow, checkpoint: Path, run_dir: Path, stages: tuple[str, ...],
                       stabilize: int = 2, finetune: int = 2) -> None:
    panel = w.panels["train"]
    panel.load_config_file(TINY_CONFIG)
    for stage, box in panel.stage_boxes.items():
        box.setChecked(stage in stages)
    values = {"model.weights": str(checkpoint), "sir.delta": 0.05, "sir.t1": 1, "sir.tau": 0.1, "sir.align": 1,
              "sir.stabilize_iters": stabilize, "finetune.iterations": finetune, "val.every": 1000,
              "runtime.checkpoint_every": 1, "runtime.log_every": 1, "data.batch_size": 1}
    for key, value in values.items():
        panel.form.set_value(key, value)
    panel.set_run_dir(run_dir)


def test_tiny_pipeline_sir_prune_compare_export(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                tmp_path: Path, dialogs) -> None:
    open_demo_clip(qtbot, window)
    open_checkpoint(qtbot, window, tiny_checkpoint)
    window.panels["prune"].align.setCurrentIndex(0)   # exact widths: multiples of 16 keep this tiny net whole
    move_slider(qtbot, window, 0.5)
    train = window.panels["train"]
    assert train.form.value("sir.ratio") == 0.5                # follows the Prune step
    configure_tiny_run(window, tiny_checkpoint, tmp_path / "run", ("sir", "finetune"))
    with qtbot.waitSignal(train.runEnded, timeout=180_000) as ended:
        with qtbot.waitSignal(window.state.prunedChanged, timeout=180_000):
            assert train.start() is not None
    assert ended.args == ["finished"], dialogs
    assert train.curves.series("lambda")[1] and train.curves.series("gamma/pruned")[1]
    assert window.state.pruned is not None and window.state.pruned.path.name == "pruned.pth"
    assert window.state.pruned.model.count_parameters() < window.state.model.model.count_parameters()

    compare = window.panels["compare"]
    with qtbot.waitSignal(compare.compareFinished, timeout=120_000):
        compare.run()
    result = window.state.compare
    assert set(result.outputs) == {"dense", "pruned"} and len(result.psnr["pruned"]) == 24
    assert result.outputs["pruned"].shape == (24, 256, 448, 3)
    assert all(np.isfinite(result.psnr["dense"]))
    assert "per frame" in compare.timing.text()
    for mode in ("wipe", "diff", "side"):
        compare.mode.setCurrentIndex(compare.mode.findData(mode))
    compare.frame_slider.setValue(5)
    assert compare.save_view(str(tmp_path / "view.png")) and (tmp_path / "view.png").stat().st_size > 1000

    export = window.panels["export"]
    export.folder.setText(str(tmp_path / "out"))
    export.checks["onnx"].setChecked(False)          # ONNX fp32/int8: tests/test_deploy_onnx.py
    export.checks["onnx_int8"].setChecked(False)
    with qtbot.waitSignal(export.exportFinished, timeout=120_000) as done:
        export.export()
    results = {o.key: o.result for o in done.args[0]}
    assert all(getattr(check, "ok", False) for check in results.values()), results
    reloaded = load_checkpoint(tmp_path / "out" / "basicvsr_pruned.pth").model
    x = example_input(3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(reloaded(x), window.state.pruned.model.cpu().eval()(x), atol=1e-6)
    assert export.results.topLevelItemCount() == 2
    model_row = export.results.topLevelItem(0)
    assert float(model_row.text(5).split()[0]) > 0                                  # proven on the clip
    assert "dB vs GT" in model_row.text(6) or "dB vs float PyTorch" in model_row.text(6)
    assert not [d for d in dialogs if d[0] != "question"]


def test_cancel_stops_run_and_leaves_usable_checkpoint(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                      tmp_path: Path) -> None:
    configure_tiny_run(window, tiny_checkpoint, tmp_path / "run", ("sir",), stabilize=100_000)
    train = window.panels["train"]
    train.start()
    qtbot.waitUntil(lambda: train.last_checkpoint is not None, timeout=120_000)
    with qtbot.waitSignal(train.runEnded, timeout=60_000) as ended:
        train.cancel()
    assert ended.args == ["cancelled"] and not train.is_running()
    state = load_state(train.last_checkpoint)
    model = model_from_state(state).eval()
    with torch.no_grad():
        out = model(example_input(2, 16, 16))
    assert out.shape == (1, 2, 3, 64, 64) and torch.isfinite(out).all()
    assert "Resume" in train.status.text()
    # and the cancelled run resumes from there
    with qtbot.waitSignal(train.runEnded, timeout=60_000):
        assert train.resume_run(tmp_path / "run") is not None
        qtbot.waitUntil(lambda: train.progress.value() > 0, timeout=60_000)
        train.cancel()


def test_loss_axis_labels_only_1_2_5_of_each_decade(qtbot):
    """Training losses span about one decade, where pyqtgraph would label all nine minor ticks on top of
    each other; the loss plot labels 20, 50, 100, 200 and leaves 30, 40, 60 ... unlabelled."""
    import math

    from app.widgets.train_curves import LogAxis, TrainingCurves

    curves = TrainingCurves()
    qtbot.addWidget(curves)
    axis = curves.loss_plot.getAxis("left")
    assert isinstance(axis, LogAxis)
    values = [math.log10(v) for v in (20, 30, 40, 50, 60, 90, 100, 200, 0.5)]
    assert axis.tickStrings(values, 1.0, 1.0) == ["20", "", "", "50", "", "", "100", "200", "0.5"]
    assert curves.psnr_plot.getAxis("left").tickStrings([19.0, 19.5], 1.0, 0.5) == ["19.0", "19.5"]


def test_sir_charts_say_a_run_without_sir_leaves_them_empty(qtbot):
    """quick.yaml runs the prune stage, not SIR: λ and |γ| stay empty, so they say why, centred, with no stage
    marker dragging their range (a marker at the finetune start once pushed "no data" off the plot's edge)."""
    from app.widgets.train_curves import TrainingCurves

    curves = TrainingCurves()
    qtbot.addWidget(curves)

    def texts(plot) -> list[str]:
        return [item.textItem.toPlainText() for item in plot.items if hasattr(item, "textItem")]

    def markers(plot) -> int:
        return sum(1 for item in plot.items if type(item).__name__ == "InfiniteLine")

    curves.clear_all(sir=False)
    curves.mark_stage(0, "finetune")
    for plot in (curves.lambda_plot, curves.gamma_plot):
        assert texts(plot) == ["no SIR stage in this run"] and markers(plot) == 0
    assert markers(curves.loss_plot) == 1 and markers(curves.psnr_plot) == 1
    curves.clear_all()                       # the next run has SIR again
    curves.mark_stage(0, "sir")
    assert texts(curves.lambda_plot) == ["no data yet"] and markers(curves.lambda_plot) == 1


def test_export_step_offers_half_flow_int8_off_by_default_and_labels_it(qtbot, window: MainWindow,
                                                                        tmp_path: Path) -> None:
    from app.export_job import FORMATS, ExportOutcome
    from app.panels.export_results import _result_item
    from core.deploy import ExportCheck

    export = window.panels["export"]
    assert not export.checks["onnx_int8_half_flow"].isChecked()        # an approximation: opted into
    assert all(box.isChecked() for key, box in export.checks.items() if key != "onnx_int8_half_flow")
    assert FORMATS["onnx_int8_half_flow"][3] == {"precision": "int8", "flow": "half"}
    path = tmp_path / "m.int8.half-flow.onnx"
    path.write_bytes(b"x" * 2048)
    check = ExportCheck(path, "onnx", 0.2, None, "basicvsr, flow at half resolution, drop vs GT", "int8",
                        ((2, 19, 23),), psnr_drop=0.01, max_drop=0.3, flow="half")
    item = _result_item(ExportOutcome("onnx_int8_half_flow", check))
    assert item.text(0) == "ONNX int8, flow at half resolution" and item.text(3) == "int8, half flow"
    assert item.text(1) == "✔ verified" and "drop 0.01 dB" in item.text(7)


def test_export_row_of_an_int8_file_over_budget_says_so_not_mismatch(qtbot, tmp_path: Path) -> None:
    from app.export_job import ExportOutcome
    from app.panels.export_panel import _verdict
    from app.panels.export_results import _result_item
    from core.deploy import ExportCheck
    from core.deploy.check import Int8OverBudget

    path = tmp_path / "m.int8.half-flow.onnx"
    path.write_bytes(b"x" * 2048)
    check = ExportCheck(path, "onnx", 0.2, None, "basicvsr, flow at half resolution, drop vs GT", "int8",
                        ((2, 19, 23),), psnr_drop=0.32, max_drop=0.3, flow="half")
    item = _result_item(ExportOutcome("onnx_int8_half_flow", check))
    assert item.text(1) == "✘ over int8 budget"
    assert item.text(7).startswith("over the int8 budget: drop 0.32 dB vs float (GT), budget 0.30 dB")
    assert _verdict(check) == "over the int8 budget"
    broken = ExportCheck(path, "onnx", 0.2, 1e-3, "basicvsr")            # an fp32 file that differs: a mismatch
    assert _result_item(ExportOutcome("onnx", broken)).text(1) == "✘ mismatch" and _verdict(broken) == "FAILED"
    unwritten = Int8OverBudget("int8 over budget: the guard judged a 0.33 dB Y-PSNR drop")     # the CLI's refusal
    assert _result_item(ExportOutcome("onnx_int8", unwritten)).text(1) == "✘ over int8 budget"
    assert _verdict(unwritten) == "over the int8 budget"

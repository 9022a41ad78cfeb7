"""The Study step driven through its widgets (offscreen): run both studies in a worker, cancel, save, reopen."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from app.clips import ClipPair  # noqa: E402
from app.frame_store import FrameStore  # noqa: E402
from app.panels.study_panel import StudyPanel  # noqa: E402
from app.state import AppState  # noqa: E402
from core.io.checkpoint import LoadedModel  # noqa: E402
from core.ssl import make_plan  # noqa: E402
from core.study import SensitivityResult, SweepResult, load_study  # noqa: E402

from .study_support import study_model, tiny_clip  # noqa: E402

TIMEOUT_MS = 300_000


@pytest.fixture
def panel(qtbot, monkeypatch):
    seen = []
    monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: seen.append(a[1:3]) or QMessageBox.StandardButton.Ok)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: seen.append(a[1:3]) or QMessageBox.StandardButton.Ok)
    state = AppState()
    p = StudyPanel(state)
    p.dialogs = seen
    qtbot.addWidget(p)
    p.show()
    yield p
    state.runner.cancel_all()
    state.runner.wait_all(60_000)


def _load(panel: StudyPanel) -> None:
    clip = tiny_clip(frames=2)
    panel.state.set_clip(ClipPair("demo-crop", FrameStore(clip.lr), FrameStore(clip.gt), Path("demo"), "given"))
    panel.state.set_model(LoadedModel(study_model(), Path("tiny.pth"), "plain"))


def test_runs_both_studies_saves_and_reopens(panel, qtbot, tmp_path):
    assert panel.run() is None and "open a dense model" in panel.dialogs[-1][1]
    _load(panel)
    panel.granularity.setCurrentIndex(panel.granularity.findData("segment"))
    with qtbot.waitSignal(panel.studyEnded, timeout=TIMEOUT_MS) as ended:
        assert panel.run() is not None
        assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    assert ended.args == ["finished"]
    sens = panel.results["sensitivity"]
    assert isinstance(sens, SensitivityResult) and len(panel.sensitivity_chart.values) == len(sens.groups)
    assert np.allclose(panel.sensitivity_chart.values, [g.drop for g in sens.groups])
    assert panel.progress.value() == panel.progress.maximum()
    saved = panel.save(tmp_path / "sens.json")
    assert load_study(saved) == sens

    panel.state.set_plan(make_plan(panel.state.scores("l1"), 0.4, frame_size=panel.state.frame_size))
    panel.kind.setCurrentIndex(panel.kind.findData("sweep"))
    panel.ratios.setText("0.3,0.6")
    with qtbot.waitSignal(panel.studyEnded, timeout=TIMEOUT_MS) as ended:
        panel.run()
    assert ended.args == ["finished"]
    sweep = panel.results["sweep"]
    assert isinstance(sweep, SweepResult)
    assert [p.label for p in sweep.points] == ["dense", "ratio 0.3", "ratio 0.6", "current plan"]
    assert sweep.align == 1                     # the Prune step's width setting, not a fixed 16
    assert panel.pareto_chart.front_x == [p.macs / 1e9 for p in sweep.front("macs")]
    saved = panel.save(tmp_path / "sweep.json")

    panel.kind.setCurrentIndex(panel.kind.findData("sensitivity"))
    reopened = panel.open_result(tmp_path / "sens.json")
    assert reopened == sens and panel.current_kind() == "sensitivity"
    assert panel.open_result(tmp_path / "sweep.json") == sweep and panel.current_kind() == "sweep"
    (tmp_path / "junk.json").write_text("{}")
    assert panel.open_result(tmp_path / "junk.json") is None and "not a study file" in panel.dialogs[-1][1]


def test_cancel_keeps_the_previous_result(panel, qtbot):
    _load(panel)
    panel.kind.setCurrentIndex(panel.kind.findData("sweep"))
    panel.ratios.setText("0.2,0.4,0.6,0.8")
    with qtbot.waitSignal(panel.studyEnded, timeout=TIMEOUT_MS) as ended:
        panel.run()
        panel.cancel()
    assert ended.args == ["cancelled"]
    assert "sweep" not in panel.results and panel.run_button.isEnabled()
    panel.ratios.setText("0.3,zero")
    assert panel.run() is None and "'zero' is not a number" in panel.dialogs[-1][1]

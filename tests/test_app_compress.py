"""The Export step's compress box: the loaded network and the current clip to one fast file, as the CLI makes it."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("pytestqt")

import core.compress.run as compress_run  # noqa: E402
from core.io.checkpoint import save_model  # noqa: E402
from core.io.frames import write_frames  # noqa: E402
from tests.helpers import tiny_model  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)
from tests.test_compress import moving_frames, synthetic_machine  # noqa: E402,F401  (fixture)

WAIT_MS = 600_000


def load(qtbot, w, model_path, clip_path) -> None:
    with qtbot.waitSignal(w.state.modelChanged, timeout=WAIT_MS):
        w.state.open_checkpoint(model_path)
    with qtbot.waitSignal(w.state.clipChanged, timeout=WAIT_MS):
        w.state.open_clip(clip_path)


def test_compress_from_the_export_step_writes_the_file_and_says_how_it_did(qtbot, window, dialogs, tmp_path,
                                                                            synthetic_machine, monkeypatch):
    monkeypatch.setattr(compress_run, "int8_conv_gain", lambda size: 100.0)   # no cut needed: the quick rung
    model = save_model(tiny_model("basicvsr", 16, 2), tmp_path / "dense.pth")
    clip = tmp_path / "clip"
    write_frames(moving_frames(14), clip)
    load(qtbot, window, model, clip)
    window.show_step("export")
    box = window.panels["export"].compress
    box.speedup.setValue(1.1)
    box.out.setText(str(tmp_path / "fast.onnx"))
    with qtbot.waitSignal(window.state.runner.busyChanged, timeout=WAIT_MS, check_params_cb=lambda busy: not busy):
        assert box.start() is not None
        assert not box.button.isEnabled() and box.cancel.isEnabled()
    assert not dialogs, dialogs
    assert box.button.isEnabled() and "wrote" in box.status.text() and "held out" in box.status.text()
    report = json.loads((tmp_path / "fast.report.json").read_text())
    assert report["footage"]["calibration_frames"] == [0, 10] and report["footage"]["judged"][0]["frames"] == [10, 14]
    assert (tmp_path / "fast.onnx").is_file() and (tmp_path / "fast.report.png").is_file()


def test_a_clip_too_short_is_refused_in_a_dialog_and_nothing_runs(qtbot, window, dialogs, tmp_path):
    model = save_model(tiny_model("basicvsr", 16, 2), tmp_path / "dense.pth")
    clip = tmp_path / "clip"
    write_frames(moving_frames(5), clip)
    load(qtbot, window, model, clip)
    box = window.panels["export"].compress
    box.out.setText(str(tmp_path / "fast.onnx"))
    assert box.start() is None
    assert dialogs and "too short" in dialogs[-1][2]
    assert box.button.isEnabled() and not (tmp_path / "fast.onnx").exists()

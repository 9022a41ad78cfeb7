"""The Export step's compress box: the loaded network and the current clip to one fast file, as the CLI makes it, in
a child process (the window never stalls behind a trace); Cancel kills it and leaves nothing behind."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

pytest.importorskip("pytestqt")

import app.child_work as child_work  # noqa: E402
import core.memory as memory  # noqa: E402
from core.io.checkpoint import save_model  # noqa: E402
from core.io.frames import write_frames  # noqa: E402
from tests.helpers import tiny_model  # noqa: E402
from tests.qt_heartbeat import Heartbeat  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)
from tests.test_compress import moving_frames  # noqa: E402

WAIT_MS = 600_000
CANCEL_S = 10
FRAMES = 12                 # the least compress takes: 10 calibration frames and 2 judged after them
SIZE = (32, 32)             # the least side int8 calibration takes


def quick_machine() -> None:
    """In the child: the latency table from a formula, nothing remembered, and speeds stated instead of timed (the
    dense network at 10 ms per frame, every int8 file twice as fast): planning picks the quick rung (no cut) and
    only the file itself is traced, quantized, guarded, judged and written — for real."""
    import core.compress.run as compress_run
    import core.deploy.timing_probe as timing_probe
    import core.profile.latency as latency
    from core.compress.speed import SpeedMeasure
    from tests.latency_support import keyed_synthetic_table

    latency.latency_table = lambda device, size, nf, bi, **_: keyed_synthetic_table(
        latency.torch.device(device), size, nf, bi)
    compress_run.int8_conv_gain = lambda size: 100.0
    compress_run.remembered_gain = lambda key: None
    compress_run.remember_gain = lambda key, gain: None
    compress_run.flow_saving_ms = lambda model, size: 0.0
    compress_run.dense_ms = lambda dense, size, rounds=3: 10.0
    compress_run.realized_speed = lambda dense, model, size, rounds=3: SpeedMeasure(tuple(size), (10.0,) * 3,
                                                                                    (5.0,) * 3)
    timing_probe.int8_timing_probe = lambda model, frames, flow: model


STUCK = "stuck while writing the report"


def stuck_with_the_file_written() -> None:
    """In the child: ``compress`` holds its outputs' locks (as it does), writes the file under the output rule,
    starts the report (a partial beside it) and never ends: Cancel finds the set half-written."""
    import core.compress.run as compress_run
    from core.io.output import staged_file, write_bytes

    def run(self, footage=None):
        outputs = self.req.outputs()
        write_bytes(outputs["onnx"], b"a file compress wrote")
        with staged_file(outputs["report"]) as tmp:
            tmp.write_text("{")
            self.say(STUCK)
            time.sleep(600)
    compress_run._Recipe.run = run


def load(qtbot, w, model_path, clip_path) -> None:
    """The clip first: the network's frame-measured scores are then measured once, on it (opened before any clip,
    they are measured on the demo clip too, in a child process of their own that compress waits for)."""
    with qtbot.waitSignal(w.state.clipChanged, timeout=WAIT_MS):
        w.state.open_clip(clip_path)
    with qtbot.waitSignal(w.state.modelChanged, timeout=WAIT_MS):
        w.state.open_checkpoint(model_path)


@pytest.fixture
def loaded(qtbot, window, tmp_path):
    model = save_model(tiny_model("basicvsr", 8, 1), tmp_path / "dense.pth")
    clip = tmp_path / "clip"
    write_frames(moving_frames(FRAMES, *SIZE), clip)
    load(qtbot, window, model, clip)
    window.show_step("export")
    box = window.panels["export"].compress
    box.speedup.setValue(1.1)
    return box


def test_compress_from_the_export_step_writes_the_file_and_never_stalls_the_window(qtbot, window, dialogs, tmp_path,
                                                                                 loaded, monkeypatch):
    monkeypatch.setattr(child_work, "CHILD_SETUP", (quick_machine,))
    box = loaded
    box.out.setText(str(tmp_path / "fast.onnx"))
    qtbot.waitUntil(lambda: not window.state.runner.running, timeout=WAIT_MS)     # the clip's scores measured
    beat = Heartbeat().start()
    with qtbot.waitSignal(window.state.runner.busyChanged, timeout=WAIT_MS, check_params_cb=lambda busy: not busy):
        assert box.start() is not None
        assert not box.button.isEnabled() and box.cancel.isEnabled()
    beat.stop()
    assert not dialogs, dialogs
    assert box.button.isEnabled() and "wrote" in box.status.text() and "held out" in box.status.text()
    assert "also ran" not in box.status.text()
    report = json.loads((tmp_path / "fast.report.json").read_text())
    assert report["footage"]["calibration_frames"] == [0, 10] and report["footage"]["judged"][0]["frames"] == [10, 12]
    assert (tmp_path / "fast.onnx").is_file() and (tmp_path / "fast.report.png").is_file()
    assert len(beat.beats) > 10 and not beat.stalls() and not beat.busy(), (beat.stalls(), beat.busy(), beat.worst())


def test_cancel_kills_the_child_and_leaves_nothing_half_written(qtbot, window, dialogs, tmp_path, loaded,
                                                                monkeypatch):
    monkeypatch.setattr(child_work, "CHILD_SETUP", (stuck_with_the_file_written,))
    box = loaded
    out = tmp_path / "new folder" / "fast.onnx"
    box.out.setText(str(out))
    ended = []
    job = box.start()
    job.cancelled.connect(lambda: ended.append(time.monotonic()))
    qtbot.waitUntil(lambda: box.status.text() == STUCK, timeout=WAIT_MS)     # the events cross as they happen
    assert out.is_file() and any(".partial-" in p.name for p in out.parent.iterdir())
    asked = time.monotonic()
    box.cancel.click()
    qtbot.waitUntil(lambda: bool(ended), timeout=CANCEL_S * 1000)
    assert ended[0] - asked < CANCEL_S
    qtbot.waitUntil(lambda: box.button.isEnabled(), timeout=WAIT_MS)
    assert box.status.text() == "Cancelled: nothing written." and not dialogs, dialogs
    assert not out.parent.exists(), sorted(p.name for p in out.parent.iterdir())


def test_a_clip_too_short_is_refused_in_a_dialog_and_nothing_runs(qtbot, window, dialogs, tmp_path):
    model = save_model(tiny_model("basicvsr", 8, 1), tmp_path / "dense.pth")
    clip = tmp_path / "clip"
    write_frames(moving_frames(5), clip)
    load(qtbot, window, model, clip)
    box = window.panels["export"].compress
    box.out.setText(str(tmp_path / "fast.onnx"))
    assert box.start() is None
    assert dialogs and "too short" in dialogs[-1][2]
    assert box.button.isEnabled() and not (tmp_path / "fast.onnx").exists()
    assert "compress" not in [job.name for job in window.state.runner.running]


def test_a_clip_too_large_for_this_machine_is_refused_in_a_dialog_and_nothing_runs(qtbot, window, dialogs, tmp_path,
                                                                                loaded, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda device=None: 2**20)
    box = loaded
    box.out.setText(str(tmp_path / "fast.onnx"))
    assert box.start() is None
    assert dialogs and dialogs[-1][1] == "Cannot compress on this clip"
    assert "needs about" in dialogs[-1][2] and "use smaller frames" in dialogs[-1][2], dialogs
    assert box.button.isEnabled() and not (tmp_path / "fast.onnx").exists()
    assert "compress" not in [job.name for job in window.state.runner.running]

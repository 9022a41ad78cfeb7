"""A person's walk on their own video, with a 20 ms heartbeat on the event loop (offscreen, tiny network):

open a checkpoint and a video, name a GT folder beside it, Prune + reconstruct, Compare while the app still
re-scores the clip, Export (checkpoint and ONNX), Train with the prune stage. In no step may the GUI thread wait
more than 100 ms for work off it (the GIL, a lock, a pipe), nor run more than 250 ms of its own between two beats
(heavy work, exports included, is off the GUI thread; how a late beat is split, tests/qt_heartbeat.py); the
interpreter's switch interval is the app's (tests/qt_support.py); Compare times alone; every figure says
what it covers and reads the same in every step; Train keeps the cut Prune reconstructed.

Set ``SSL_VSR_WALK_SHOTS=FOLDER`` to also write a PNG of each step at 1280×800 (to look at).
"""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from app.figures import BICUBIC  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from core.io.checkpoint import load_checkpoint  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.frames import write_video  # noqa: E402
from core.io.image_file import read_frame  # noqa: E402
from core.recover.reconstruct import ReconstructSettings  # noqa: E402
from tests.helpers import tiny_dense_file  # noqa: E402
from tests.qt_heartbeat import STALL_MS, Heartbeat  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)

FRAMES = 6
WAIT_MS = 600_000
FAST = ReconstructSettings(max_frames=4, holdout=2, rows=8192)
SHOTS = os.environ.get("SSL_VSR_WALK_SHOTS")


@pytest.fixture
def dense_file(tmp_path) -> Path:
    return tiny_dense_file(tmp_path)


@pytest.fixture
def video_and_gt(tmp_path) -> tuple[Path, Path]:
    """The demo clip's first LR frames as a video, and its GT frames in a folder of their own."""
    demo = demo_clip_dir()
    lr = np.stack([read_frame(f)[0] for f in sorted((demo / "BIx4").iterdir())[:FRAMES]])
    video = write_video(lr, tmp_path / "my clip.mp4")
    gt = tmp_path / "truth"
    gt.mkdir()
    for f in sorted((demo / "GT").iterdir())[:FRAMES]:
        shutil.copy(f, gt / f.name)
    return video, gt


def shoot(qtbot, w: MainWindow, beat: Heartbeat, step: str, name: str) -> None:
    """A PNG of ``step`` when SSL_VSR_WALK_SHOTS names a folder (grabbing the window is the test's work, not the
    app's: its beats are not counted)."""
    if SHOTS:
        phase, beat.phase = beat.phase, "screenshot"
        w.resize(1280, 800)
        w.show_step(step)
        qtbot.wait(200)
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        w.grab().save(str(Path(SHOTS) / f"{name}.png"), "PNG")
        qtbot.wait(200)
        beat.phase = phase


def idle(w: MainWindow) -> bool:
    return not w.state.runner.running


def test_walk_on_a_video_never_stalls_and_keeps_one_figure(qtbot, window: MainWindow, dense_file: Path,
                                                         video_and_gt, tmp_path: Path, dialogs,
                                                         monkeypatch) -> None:
    w, state = window, window.state
    video, gt = video_and_gt
    state.current.reconstruct_settings = FAST
    state.warm_up_engine()                       # as the app starts (launch.py): slow imports before any step
    with qtbot.waitSignal(state.modelChanged, timeout=WAIT_MS):
        w.open_path(dense_file)
    qtbot.waitUntil(lambda: idle(w), timeout=WAIT_MS)
    beat = Heartbeat().start()

    # the video, then a GT folder beside it (any frames folder)
    beat.phase = "open video"
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_path(video)
    assert state.clip.gt is None and len(state.clip) == FRAMES
    beat.phase = "name GT"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(gt))
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_gt_dialog()
    assert state.clip.gt is not None and state.clip.gt_source == gt
    assert "GT: truth" in w.panels["compare"].clip_label.text()

    # Prune + reconstruct; its figures say which frames they cover
    beat.phase = "prune"
    prune = w.panels["prune"]
    w.show_step("prune")
    prune.align.setCurrentIndex(prune.align.findData(1))
    # a weight criterion: the clip's re-scoring below runs in the background without re-making this plan
    prune.criterion.setCurrentIndex(prune.criterion.findData("l1"))
    with qtbot.waitSignal(prune.planUpdated, timeout=WAIT_MS):
        prune.ratio.slider.setValue(500)
    assert state.plan.criterion == "l1"
    prune.reconstruct_box.setChecked(True)
    with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
        prune.apply_button.click()
    qtbot.waitUntil(lambda: idle(w), timeout=WAIT_MS)
    recovery = state.current.recovery
    assert recovery is not None
    assert "the first 4 frames (64×112, fitted on) of my clip" in prune.totals["recovery"].text()
    shoot(qtbot, w, beat, "prune", "walk_prune")

    # Compare while the app re-scores the clip (reopened): it waits, then times alone
    beat.phase = "compare"
    compare = w.panels["compare"]
    w.show_step("compare")
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        state.open_clip(video, gt=gt)
    with qtbot.waitSignal(compare.compareFinished, timeout=WAIT_MS):
        assert compare.run() is not None
    qtbot.waitUntil(lambda: compare.job is None, timeout=WAIT_MS)
    figures = state.compare.figures
    assert all(not f.contended for f in figures.values()), figures
    text = compare.timing.text()
    assert "measured speed-up" in text and "not comparable" not in text
    assert f"all {FRAMES} frames of my clip" in text
    dense, pruned = state.figure(state.model.model), state.figure(state.pruned.model)
    bicubic = state.figure(BICUBIC)
    shoot(qtbot, w, beat, "compare", "walk_compare")

    # Export the checkpoint and ONNX: the figures beside each file are Compare's
    beat.phase = "export"
    export = w.panels["export"]
    w.show_step("export")
    export.folder.setText(str(tmp_path / "exports"))
    export.stem.setText("walk")
    for key, box in export.checks.items():
        box.setChecked(key in ("model", "onnx"))
    with qtbot.waitSignal(export.exportFinished, timeout=WAIT_MS) as done:
        assert export.export() is not None
    qtbot.waitUntil(lambda: export.job is None, timeout=WAIT_MS)
    outcomes = {o.key: o for o in done.args[0]}
    assert all(getattr(o.result, "ok", False) for o in outcomes.values()), outcomes
    base = outcomes["model"].baseline
    assert (base.pruned, base.dense, base.bicubic) == (pruned.psnr, dense.psnr, bicubic.psnr)
    assert abs(outcomes["onnx"].proof.y_psnr - pruned.psnr) < 0.05
    shoot(qtbot, w, beat, "export", "walk_export")

    # Train with the prune stage: the cut Prune reconstructed is kept, not made again
    assert state.current.recovery_for(state.model.model, state.plan) is recovery
    beat.phase = "train"
    train = w.panels["train"]
    w.show_step("train")
    for stage, box in train.stage_boxes.items():
        box.setChecked(stage in ("prune", "finetune"))
    values = {"model.weights": str(dense_file), "prune.reconstruct": True, "finetune.iterations": 2,
              "val.every": 1000, "val.max_frames": 4,
              "runtime.checkpoint_every": 1, "runtime.log_every": 1, "data.batch_size": 1}
    for key, value in values.items():
        train.form.set_value(key, value)
    run_dir = tmp_path / "runs" / "walk"
    train.set_run_dir(run_dir)
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        assert train.start() is not None
        assert "No run yet" not in train.status.text() and "Running prune → finetune" in train.status.text()
    assert ended.args == ["finished"], dialogs
    qtbot.waitUntil(lambda: idle(w), timeout=WAIT_MS)
    assert "keeps the cut the Prune step reconstructed on my clip" in train.log.toPlainText()
    assert "the cut made before the run is used" in (run_dir / "train.log").read_text()
    cut = load_checkpoint(run_dir / "cut.pth")
    assert all(torch.equal(v, recovery.model.state_dict()[k].cpu()) for k, v in cut.model.state_dict().items())
    shoot(qtbot, w, beat, "train", "walk_train")
    beat.stop()

    skip = ("screenshot",)
    late = [(b.phase, round(b.raw), round(b.queued), round(b.gui_cpu)) for b in beat.beats
            if b.raw > STALL_MS and b.phase not in skip]
    print(f"beats late by more than {STALL_MS} ms on the wall clock (phase, ms late, ms queued, ms GUI CPU): {late}")
    assert not beat.stalls(skip=skip) and not beat.busy(skip=skip), (beat.stalls(skip=skip), beat.busy(skip=skip),
                                                                      beat.worst(), late)
    assert state.figure(state.model.model) == dense          # the figures outlived every step
    assert not [d for d in dialogs if d[0] != "question"], dialogs

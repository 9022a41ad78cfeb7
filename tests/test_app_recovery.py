"""Reconstruction at the cut in the app, and saying plainly what a raw cut is (offscreen, tiny 16-channel models):

the Prune step reconstructs in a worker (progress, cancel) and shows the PSNR figures, and the current pruned
network is then the reconstructed one; Compare's banner warns on a raw cut and on a network below bicubic;
Export refuses a raw cut's int8 file with the CLI's reason, puts dense and bicubic beside each file's Y-PSNR, asks
before replacing files and marks results of a previous model; the Train step opens on quick.yaml and draws
reference lines; the window fits a 1280×800 screen.
"""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import dataclasses  # noqa: E402
import math  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QMessageBox  # noqa: E402

import app.current_plan as owner  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.train_references import ValReference, on_training_frames, validation_references  # noqa: E402
from core.device import resolve_device  # noqa: E402
from core.events import Progress  # noqa: E402
from core.io.checkpoint import load_checkpoint, save_model  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.recover.reconstruct import ReconstructReport, ReconstructSettings  # noqa: E402
from core.recover.status import recovery_status  # noqa: E402
from core.train.config_load import load_config  # noqa: E402
from tests.helpers import tiny_dense_file, tiny_model  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)

FRAMES = 6
WAIT_MS = 240_000
FAST = ReconstructSettings(max_frames=4, holdout=2, rows=8192)   # seconds on the tiny model; 6-frame clips
QUICK = Path(__file__).resolve().parents[1] / "resources" / "configs" / "quick.yaml"


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_checkpoint(tmp_path) -> Path:
    return tiny_dense_file(tmp_path)


@pytest.fixture
def noisy_checkpoint(tmp_path) -> Path:
    """A tiny network whose output is far from any picture (its last conv ×50): its cut is worse than bicubic."""
    model = tiny_model("basicvsr", 16, 2)
    with torch.no_grad():
        model.conv_last.weight.mul_(50.0)
        model.conv_last.bias.add_(0.5)
    path = tmp_path / "models" / "noisy_dense.pth"
    path.parent.mkdir(exist_ok=True)
    save_model(model, path, {"note": "a network that outputs noise"})
    return path


def _copy_clip(root: Path, subs: tuple[str, ...]) -> Path:
    for sub in subs:
        (root / sub).mkdir(parents=True)
        for f in sorted((demo_clip_dir() / sub).iterdir())[:FRAMES]:
            shutil.copy(f, root / sub / f.name)
    return root


@pytest.fixture
def short_clip(tmp_path) -> Path:
    """The first frames of the demo clip, GT/ and BIx4/ as in Vid4."""
    return _copy_clip(tmp_path / "clip", ("GT", "BIx4"))


@pytest.fixture
def lr_only_clip(tmp_path) -> Path:
    """The same LR frames with no ground truth."""
    return _copy_clip(tmp_path / "lr_only", ("BIx4",)) / "BIx4"


def load(qtbot, w: MainWindow, checkpoint: Path, clip: Path, ratio: float = 0.5) -> None:
    with qtbot.waitSignal(w.state.clipChanged, timeout=WAIT_MS):
        w.open_path(clip)
    with qtbot.waitSignal(w.state.modelChanged, timeout=WAIT_MS):
        w.open_path(checkpoint)
    w.state.current.reconstruct_settings = FAST
    prune = w.panels["prune"]
    prune.align.setCurrentIndex(prune.align.findData(1))     # exact widths: a 16-channel toy rounds to 0 or 16
    with qtbot.waitSignal(prune.planUpdated, timeout=WAIT_MS):
        prune.ratio.slider.setValue(round(ratio * 1000))


def cut(qtbot, w: MainWindow, reconstruct: bool) -> None:
    prune = w.panels["prune"]
    prune.reconstruct_box.setChecked(reconstruct)
    with qtbot.waitSignal(w.state.prunedChanged, timeout=WAIT_MS):
        assert prune.apply_plan() is not None
    qtbot.waitUntil(lambda: prune.job is None, timeout=WAIT_MS)


def run_compare(qtbot, w: MainWindow) -> None:
    compare = w.panels["compare"]
    with qtbot.waitSignal(compare.compareFinished, timeout=WAIT_MS):
        assert compare.run() is not None
    qtbot.waitUntil(lambda: compare.job is None, timeout=WAIT_MS)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- Prune: reconstruct in the worker ---------------------------------------------------------------------
def test_prune_step_reconstructs_in_a_worker_and_the_current_network_is_the_reconstructed_one(
        qtbot, window: MainWindow, tiny_checkpoint: Path, short_clip: Path, tmp_path: Path, dialogs,
        monkeypatch) -> None:
    w, state = window, window.state
    load(qtbot, w, tiny_checkpoint, short_clip)
    prune, current = w.panels["prune"], state.current
    assert prune.reconstruct_box.isChecked() and prune.apply_button.text() == "Prune + reconstruct"   # default on
    assert "raw cut — not reconstructed: far below dense, often noise" in prune.totals["recovery"].text()
    threads, events = [], []
    real = owner.reconstruct
    monkeypatch.setattr(owner, "reconstruct", lambda *a, **k: threads.append(threading.current_thread()) or real(*a, **k))
    seen = prune._job_event
    monkeypatch.setattr(prune, "_job_event", lambda e: events.append(e) or seen(e))
    with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
        job = prune.apply_plan()
        assert job is not None and not prune.progress.isHidden() and prune.cancel_button.isEnabled()
        assert not prune.apply_button.isEnabled()
    qtbot.waitUntil(lambda: prune.job is None, timeout=WAIT_MS)
    assert threads and threads[0] is not threading.main_thread()                 # ran in the worker
    progress = [e for e in events if isinstance(e, Progress) and e.stage == "reconstruct"]
    assert progress and progress[-1].iteration == progress[-1].total               # the bar went to the end
    assert prune.progress.isHidden() and prune.apply_button.isEnabled() and not prune.cancel_button.isEnabled()

    recovery = current.recovery
    dense = state.model.model
    assert recovery is not None and recovery.matches(dense, state.plan) and recovery.clip == "clip"
    text = prune.totals["recovery"].text()
    r = recovery.report
    assert "reconstructed" in text and f"raw cut {r.psnr_raw:.1f} dB → reconstructed {r.psnr_after:.1f} dB" in text
    assert f"on the first {r.frames} frames" in text and "of clip" in text and r.frames == FAST.max_frames
    assert r.psnr_after > r.psnr_raw
    # the one owner now hands out the reconstructed network: the pruned slot, Compare and Export use it
    pruned = state.pruned
    assert pruned.status.reconstructed and not pruned.status.raw_cut and "reconstructed on clip" in pruned.origin
    assert same_weights(pruned.model, recovery.model) and pruned.model is not recovery.model
    assert same_weights(current.network(dense), recovery.model)
    assert not same_weights(current.raw_network(dense), recovery.model)
    run_compare(qtbot, w)
    compare = w.panels["compare"]
    assert state.compare.compared["pruned"] == id(pruned.model)
    assert "raw cut" not in compare.lineage_label.text() and "derived" in compare.lineage_label.text()
    export = w.panels["export"]
    export.folder.setText(str(tmp_path / "out"))
    for key, box in export.checks.items():
        box.setChecked(key == "model")
    with qtbot.waitSignal(export.exportFinished, timeout=WAIT_MS) as done:
        assert export.export() is not None
    assert all(getattr(o.result, "ok", False) for o in done.args[0]), done.args[0]
    written = load_checkpoint(tmp_path / "out" / "basicvsr_pruned.pth")
    assert same_weights(written.model, recovery.model)
    assert recovery_status(written.meta, True).reconstructed          # the file says how it was made
    # with the box off the same plan's cut is the raw cut again (the reconstruction stays kept for it)
    cut(qtbot, w, reconstruct=False)
    assert state.pruned.status.raw_cut and same_weights(state.pruned.model, current.raw_network(dense))
    assert current.recovery is recovery and "reconstructed" in prune.totals["recovery"].text()
    prune.reconstruct_box.setChecked(True)
    # a slider move leaves the reconstruction stale (it is not re-run), and the new plan's network is the raw cut
    with qtbot.waitSignal(prune.planUpdated, timeout=WAIT_MS):
        prune.ratio.slider.setValue(300)
    assert prune.job is None and len(threads) == 1
    assert "stale" in prune.totals["recovery"].text() and "raw cut" in prune.totals["recovery"].text()
    assert current.stale(dense) and current.recovery_for(dense) is None
    assert not [d for d in dialogs if d[0] != "question"], dialogs


def test_reconstruction_cancels_and_leaves_the_pruned_slot_alone(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                                 short_clip: Path) -> None:
    w, state = window, window.state
    load(qtbot, w, tiny_checkpoint, short_clip)
    prune = w.panels["prune"]
    cancelled = []
    job = prune.apply_plan()
    job.cancelled.connect(lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: prune.progress.maximum() > 0, timeout=WAIT_MS)       # the first refit reported
    prune.cancel_button.click()
    qtbot.waitUntil(lambda: prune.job is None, timeout=WAIT_MS)
    assert cancelled and state.pruned is None and state.current.recovery is None
    assert prune.progress.isHidden() and prune.apply_button.isEnabled()
    assert "raw cut" in prune.totals["recovery"].text()


def test_a_diverged_reconstruction_is_refused_and_the_raw_cut_stays(qtbot, window: MainWindow, tiny_checkpoint: Path,
                                                                    short_clip: Path, dialogs, monkeypatch) -> None:
    """A refit whose output overflowed scores NaN, which the engine's PSNR reports as infinite: not a result."""
    w, state = window, window.state
    load(qtbot, w, tiny_checkpoint, short_clip)
    prune = w.panels["prune"]
    fields = {f.name for f in dataclasses.fields(ReconstructReport)}
    extra = {"psnr_bicubic": 30.0} if "psnr_bicubic" in fields else {}      # the report is still growing
    diverged = ReconstructReport(frames=4, size=(64, 112), seconds=0.1, psnr_raw=20.0, psnr_after=-math.inf,
                                 layers_refit=23, layers_kept=0, **extra)
    monkeypatch.setattr(owner, "reconstruct", lambda dense, pruned, *a, **k: (pruned, diverged))
    assert prune.apply_plan() is not None
    qtbot.waitUntil(lambda: prune.job is None, timeout=WAIT_MS)
    assert dialogs and dialogs[-1][0] == "warning" and "reconstruction failed" in dialogs[-1][2]
    assert state.pruned is None and state.current.recovery is None
    assert "raw cut" in prune.totals["recovery"].text() and prune.apply_button.isEnabled()
    # Compare (no pruned network yet) falls back to the raw cut and says so
    run_compare(qtbot, w)
    assert state.pruned.status.raw_cut and "raw cut" in w.panels["compare"].lineage_label.text()


# -- Compare: the banner says what a raw cut is ------------------------------------------------------------
def test_compare_banner_warns_on_a_raw_cut_below_bicubic(qtbot, window: MainWindow, noisy_checkpoint: Path,
                                                         short_clip: Path, lr_only_clip: Path) -> None:
    w, state = window, window.state
    load(qtbot, w, noisy_checkpoint, short_clip)
    cut(qtbot, w, reconstruct=False)
    prune, compare = w.panels["prune"], w.panels["compare"]
    assert state.pruned.status.raw_cut and "raw cut (zero-shot)" in state.pruned.origin
    assert "raw cut — not reconstructed: far below dense, often noise" in prune.totals["recovery"].text()
    assert "(reconstruction is off)" in prune.totals["recovery"].text()
    banner = compare.lineage_label
    assert not banner.isHidden() and "raw cut" in banner.text() and "often noise" in banner.text()
    assert "#b00020" in banner.text() and "#b00020" in banner.styleSheet()              # a warning colour
    assert "derived from the dense model" in banner.text()                                # lineage still said
    run_compare(qtbot, w)
    p, b = state.compare.psnr["pruned"], state.compare.psnr["bicubic"]
    assert sum(p) / len(p) < sum(b) / len(b)
    assert "Below bicubic" in banner.text() and "vs GT" in banner.text()
    # without GT the pruned network and bicubic are scored against the dense output
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_path(lr_only_clip)
    run_compare(qtbot, w)
    r = state.compare
    assert r.reference == "dense" and set(r.psnr) == {"bicubic", "pruned"} and len(r.psnr["pruned"]) == FRAMES
    assert "vs the dense output" in compare.timing.text() and "raw cut" in banner.text()
    # here both networks make the same noise, far from bicubic's picture: scored against the dense output, the
    # cut is close to it, and no "below bicubic" is claimed
    assert min(r.psnr["pruned"]) > max(r.psnr["bicubic"]) and "Below bicubic" not in banner.text()


# -- Export ------------------------------------------------------------------------------------------------------
def test_export_refuses_a_raw_cut_int8_and_shows_dense_and_bicubic(qtbot, window: MainWindow, noisy_checkpoint: Path,
                                                                  short_clip: Path, tmp_path: Path, dialogs,
                                                                  monkeypatch) -> None:
    w, state = window, window.state
    load(qtbot, w, noisy_checkpoint, short_clip)
    cut(qtbot, w, reconstruct=False)
    export = w.panels["export"]
    assert "raw cut" in export.source.text()
    export.folder.setText(str(tmp_path / "out"))
    for key, box in export.checks.items():
        box.setChecked(key in ("model", "onnx_int8"))
    with qtbot.waitSignal(export.exportFinished, timeout=WAIT_MS) as done:
        assert export.export() is not None
    qtbot.waitUntil(lambda: export.job is None, timeout=WAIT_MS)
    results = {o.key: o.result for o in done.args[0]}
    assert getattr(results["model"], "ok", False), results
    assert "not worth quantizing" in str(results["onnx_int8"])             # the CLI's one-line reason
    assert not (tmp_path / "out" / "basicvsr_pruned.int8.onnx").exists()
    rows = {export.results.topLevelItem(i).text(0): export.results.topLevelItem(i)
            for i in range(export.results.topLevelItemCount())}
    int8, model = rows["ONNX int8"], rows["Pruned checkpoint"]
    assert int8.text(1) == "✘ refused" and "not worth quantizing" in int8.text(7)
    reason = int8.child(0).text(0)                            # the whole reason, on a row of its own
    assert int8.isExpanded() and "not worth quantizing" in reason and "bicubic" in reason.replace("\n", " ")
    base = done.args[0][0].baseline
    assert base is not None and base.reference == "GT" and base.frames == FRAMES and base.dense is not None
    assert model.text(6) == f"{done.args[0][0].proof.y_psnr:.2f} · {base.dense:.2f} · {base.bicubic:.2f} dB vs GT"
    assert export.results.headerItem().text(6) == "Y-PSNR vs GT:\nfile · dense · bicubic"
    assert f"all {FRAMES} frames of clip" in export.results_note.text()                # which frames
    assert recovery_status(load_checkpoint(tmp_path / "out" / "basicvsr_pruned.pth").meta, True).raw_cut
    assert w.isVisible() and not [d for d in dialogs if d[0] != "question"], dialogs

    # the same stem again: asked first, then replaced
    for key, box in export.checks.items():
        box.setChecked(key == "model")
    asked = len(dialogs)
    with qtbot.waitSignal(export.exportFinished, timeout=WAIT_MS) as done:
        assert export.export() is not None
    qtbot.waitUntil(lambda: export.job is None, timeout=WAIT_MS)
    assert len(dialogs) == asked + 1 and dialogs[-1][0] == "question" and "basicvsr_pruned.pth" in dialogs[-1][2]
    assert getattr(done.args[0][0].result, "ok", False), done.args[0][0].result
    # answering No writes nothing
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert export.export() is None and export.job is None
    # another model: the rows are marked as a previous model's
    assert "previous model" not in export.results_note.text()
    cut(qtbot, w, reconstruct=False)
    assert "previous model" in export.results_note.text()


# -- Train --------------------------------------------------------------------------------------------------------
def test_train_step_opens_on_quick_yaml_and_draws_reference_lines(qtbot, window: MainWindow,
                                                                  tiny_checkpoint: Path) -> None:
    w = window
    train = w.panels["train"]
    assert train.config_file is not None and train.config_file.name == "quick.yaml"
    assert "quick.yaml" in train.config_label.text() and train.form.value("finetune.iterations") == load_config(QUICK).finetune.iterations
    assert not train.val_note.isHidden() and "training frames" in train.val_note.text()
    assert "training frames" in train.curves.psnr_plot.titleLabel.text
    with qtbot.waitSignal(w.state.modelChanged, timeout=WAIT_MS):
        w.open_path(tiny_checkpoint)
    assert train.form.value("model.weights") == str(tiny_checkpoint)          # the default config follows the model
    cfg = load_config(QUICK)
    assert on_training_frames(cfg)
    cfg.model.weights = str(tiny_checkpoint)
    cfg.val.max_frames = 3
    ref = validation_references(cfg, resolve_device("cpu"))
    assert isinstance(ref, ValReference) and ref.frames == 3 and ref.on_training_frames
    assert 15 < ref.bicubic < 40 and ref.start is not None and ref.start_label == "dense"
    train.handle_event(ref)
    assert set(train.curves.references()) == {"dense", "bicubic"}
    assert "bicubic" in train.log.toPlainText() and "reference on 3 validation frames" in train.log.toPlainText()


# -- window --------------------------------------------------------------------------------------------------------
def test_window_fits_a_1280x800_screen(qtbot, window: MainWindow, tiny_checkpoint: Path, short_clip: Path) -> None:
    w = window
    assert w.width() <= 1280 and w.height() <= 800
    load(qtbot, w, tiny_checkpoint, short_clip)
    for key, panel in w.panels.items():
        w.show_step(key)
        least = panel.minimumSizeHint()
        assert least.width() <= w.stack.width() and least.height() <= w.stack.height(), key
    assert w.width() <= 1280 and w.height() <= 800          # showing every step did not grow the window
    assert "64×112 → 256×448 (H×W)" in w.panels["compare"].clip_label.text()
    assert "64×112" in w.panels["model"].dense_card.values["MACs / frame"].text()

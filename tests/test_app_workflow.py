"""The workflow in the order a person walks it, through the window's widgets (offscreen):

Load → Prune → Compare → Export → (a training start that fails, then Train → Compare → Export) → an unrelated
"pruned" model next to the dense one. Every exported file is reloaded and checked, and the shared models are
checked unchanged after every step that only reads them.
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
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from app.main_window import MainWindow  # noqa: E402
from core.io.checkpoint import load_checkpoint, save_model  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.models.basicvsr import BasicVSR  # noqa: E402
from core.deploy import example_input  # noqa: E402
from core.ssl.lineage import DERIVED, UNRELATED, check_lineage  # noqa: E402
from tests.helpers import tiny_model  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)

TINY_CONFIG = Path(__file__).resolve().parents[1] / "resources" / "configs" / "tiny.yaml"
FRAMES = 6
TRACE_SHAPE = (3, 32, 32)      # frames, height, width the exporters trace with (small: the ONNX export unrolls it)
WAIT_MS = 240_000
EXPORT_MS = 1_200_000          # the dynamic ONNX trace alone took 6 min on the shared, busy 2-core machine


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture
def basicsr_checkpoint(tmp_path) -> Path:
    """A small dense BasicVSR saved the way BasicSR saves its networks ({'params': state_dict})."""
    path = tmp_path / "models" / "tiny_basicsr.pth"
    path.parent.mkdir()
    torch.save({"params": tiny_model("basicvsr", 16, 2).state_dict()}, path)
    return path


@pytest.fixture
def short_clip(tmp_path) -> Path:
    """The first frames of the demo clip, GT/ and BIx4/ as in Vid4."""
    root = tmp_path / "clip"
    for sub in ("GT", "BIx4"):
        (root / sub).mkdir(parents=True)
        for f in sorted((demo_clip_dir() / sub).iterdir())[:FRAMES]:
            shutil.copy(f, root / sub / f.name)
    return root


# -- helpers ----------------------------------------------------------------------------------------------
def fingerprint(model: BasicVSR) -> tuple:
    """What a consumer could change in place: mode, devices, dtypes, memory layouts, values."""
    return (model.training, tuple((k, str(v.device), v.dtype, v.stride(), float(v.double().sum()))
                                  for k, v in model.state_dict().items()))


def sr(model: BasicVSR, x: torch.Tensor) -> np.ndarray:
    """The network's output, computed on a copy (the test must not change the app's models either)."""
    clone = BasicVSR(model.spec)
    clone.load_state_dict(model.state_dict())
    with torch.no_grad():
        return clone.eval()(x).numpy()


def run_compare(qtbot, w: MainWindow) -> None:
    compare = w.panels["compare"]
    w.show_step("compare")
    with qtbot.waitSignal(compare.compareFinished, timeout=WAIT_MS):
        assert compare.run() is not None
    result = w.state.compare
    assert result.complete and set(result.outputs) == {"dense", "pruned"}
    assert all(len(store) == FRAMES for store in (result.bicubic, *result.outputs.values()))
    assert all(len(v) == FRAMES and np.isfinite(v).all() for v in result.psnr.values())
    compare.frame_slider.setValue(FRAMES - 1)             # the scrubber reaches the last frame
    assert f"frame {FRAMES}/{FRAMES}" in compare.frame_label.text()
    for name in ("dense", "pruned"):
        xs, ys = compare.psnr_curves[name].getData()
        assert len(xs) == FRAMES and np.allclose(ys, result.psnr[name])


def export_files(qtbot, w: MainWindow, folder: Path, stem: str, formats: tuple[str, ...]) -> dict[str, object]:
    """Export ``formats`` (keys of the panel's check boxes) through the panel; return its verdicts."""
    export = w.panels["export"]
    w.show_step("export")
    export.folder.setText(str(folder))
    export.stem.setText(stem)
    for key, box in export.checks.items():
        box.setChecked(key in formats)
    for box, value in zip(getattr(export, "shape", {}).values(), TRACE_SHAPE):   # traced-shape exporters
        box.setValue(value)
    with qtbot.waitSignal(export.exportFinished, timeout=EXPORT_MS) as done:
        assert export.export() is not None
    results = {o.key: o.result for o in done.args[0]}
    failed = {key: r for key, r in results.items() if not getattr(r, "ok", False)}
    assert not failed, failed
    assert set(results) == set(formats) and export.results.topLevelItemCount() >= len(results)
    return results


def check_exported_files(folder: Path, stem: str, model: BasicVSR, dense_path: Path) -> set[str]:
    """Reload every file the export wrote and check it against ``model``; returns the kinds seen."""
    import h5py
    import onnxruntime as ort

    x = example_input(4, 32, 32, seed=3)
    expected = sr(model, x)
    kinds: set[str] = set()
    files = sorted(p for p in folder.iterdir() if p.name.startswith(stem))
    assert files, f"nothing exported into {folder}"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "temporary files left behind"
    for path in files:
        name = path.name
        if name.endswith(".pth"):
            loaded = load_checkpoint(path)
            assert loaded.spec == model.spec
            assert np.abs(sr(loaded.model, x) - expected).max() < 1e-5
            verdict = check_lineage(load_checkpoint(dense_path).spec, loaded.spec, dense_path=dense_path,
                                    pruned_path=path, pruned_meta=loaded.meta)
            assert verdict.status == DERIVED, verdict.summary()    # the file says where it came from
            kinds.add("model")
        elif name.endswith(".int8.onnx"):       # quantized: close to the float network, not equal
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
            err = float(np.sqrt(np.mean((np.clip(out, 0, 1) - np.clip(expected, 0, 1)) ** 2)))
            assert out.shape == expected.shape and -20 * np.log10(max(err, 1e-12)) > 25, name
            kinds.add("onnx_int8")
        elif name.endswith(".onnx"):
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            inputs = session.get_inputs()
            if len(inputs) == 1:
                shape = [d if isinstance(d, int) else None for d in inputs[0].shape]
                clip = x if None in shape else example_input(shape[1], shape[3], shape[4], seed=3)
                out = session.run(None, {inputs[0].name: clip.numpy()})[0]
                assert np.abs(out - sr(model, clip)).max() < 1e-4, name
            else:        # a step model: every input given, the outputs come back finite
                feed = {i.name: np.random.rand(*[d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
                        for i in inputs}
                assert all(np.isfinite(o).all() for o in session.run(None, feed))
            kinds.add("onnx")
        elif name.endswith(".h5"):
            with h5py.File(path, "r") as f:
                assert f.attrs["format"] == "ssl-vsr-report"
                assert len(f["plan/layers"]) > 0 and "metrics" in f
            kinds.add("h5")
        else:
            kinds.add(path.suffix)
    return kinds


def configure_run(w: MainWindow, weights: Path, run_dir: Path | None = None) -> None:
    panel = w.panels["train"]
    panel.load_config_file(TINY_CONFIG)
    for stage, box in panel.stage_boxes.items():
        box.setChecked(stage in ("sir", "finetune"))
    values = {"model.weights": str(weights), "sir.delta": 0.05, "sir.t1": 1, "sir.tau": 0.1, "sir.align": 1,
              "sir.stabilize_iters": 2, "finetune.iterations": 2, "val.every": 1000,
              "runtime.checkpoint_every": 1, "runtime.log_every": 1, "data.batch_size": 1}
    for key, value in values.items():
        panel.form.set_value(key, value)
    if run_dir is not None:
        panel.set_run_dir(run_dir)


# -- the walk --------------------------------------------------------------------------------------------
def test_load_prune_compare_export_train_compare_export(qtbot, window: MainWindow, basicsr_checkpoint: Path,
                                                         short_clip: Path, tmp_path: Path, dialogs) -> None:
    w, state = window, window.state
    # 1 Load: the model, then the clip (as a person would drop them on the window)
    with qtbot.waitSignal(state.modelChanged, timeout=WAIT_MS):
        w.open_path(basicsr_checkpoint)
    assert state.model.source_format == "basicsr" and state.model.spec.num_feat == 16
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_path(short_clip)
    assert len(state.clip) == FRAMES and state.clip.gt is not None
    dense_print = fingerprint(state.model.model)

    # 2 Prune: exact widths (a 16-channel toy would round to 0 or 16), ratio 0.5, prune now (zero-shot)
    prune = w.panels["prune"]
    w.show_step("prune")
    prune.align.setCurrentIndex(prune.align.findData(1))
    with qtbot.waitSignal(prune.planUpdated, timeout=WAIT_MS):
        prune.ratio.slider.setValue(500)
    prune.reconstruct_box.setChecked(False)        # the raw cut here; reconstruction: tests/test_app_recovery.py
    with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
        prune.apply_button.click()
    zero_shot = state.pruned
    assert zero_shot.plan is not None and state.lineage().status == DERIVED
    pruned_print = fingerprint(zero_shot.model)

    # 3 Compare: both networks on the clip; neither shared model is changed by it
    run_compare(qtbot, w)
    compare = w.panels["compare"]
    assert "speed-up" in compare.timing.text() and "derived" in compare.lineage_label.text()
    assert fingerprint(state.model.model) == dense_print and fingerprint(zero_shot.model) == pruned_print

    # 4 Export after Compare (the order that used to write a broken ONNX), every file reloaded
    # (int8 has its own tests in core/deploy; its calibration trace would double this test's time)
    export_files(qtbot, w, tmp_path / "export1", "zero_shot", ("model", "onnx", "h5"))
    assert {"model", "onnx", "h5"} <= check_exported_files(tmp_path / "export1", "zero_shot", zero_shot.model,
                                                           basicsr_checkpoint)
    assert fingerprint(state.model.model) == dense_print and fingerprint(zero_shot.model) == pruned_print

    # 5 Train: first a start that fails (no such weights) — a clear dialog, no "Resume" promise, a new folder next
    train = w.panels["train"]
    w.show_step("train")
    failed_dir = tmp_path / "runs" / "failed"
    configure_run(w, tmp_path / "missing.pth", failed_dir)
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        assert train.start() is not None
    assert ended.args == ["failed"]
    kind, title, text = dialogs[-1]
    assert "missing.pth" in text and "Resume" not in text and "Nothing was trained" in text
    assert train.run_dir_path != failed_dir and str(train.run_dir_path) in train.run_dir.text()
    # then the run a person meant: it writes into the folder the header shows, not the failed one
    configure_run(w, basicsr_checkpoint)
    run_dir = train.run_dir_path
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
            assert train.start() is not None
    assert ended.args == ["finished"], dialogs
    assert (run_dir / "pruned.pth").is_file() and not (failed_dir / "pruned.pth").exists()
    assert not (failed_dir / "checkpoints").exists()
    assert train.run_dir_path != run_dir                      # the next run gets its own folder again
    trained = state.pruned
    assert trained.path == run_dir / "pruned.pth" and state.model.path == basicsr_checkpoint
    assert state.lineage().status == DERIVED, state.lineage().summary()
    assert trained.model.count_parameters() < state.model.model.count_parameters()
    assert fingerprint(state.model.model) == dense_print
    trained_print = fingerprint(trained.model)

    # 6 Compare the trained network, 7 export it
    run_compare(qtbot, w)
    assert "speed-up" in compare.timing.text()
    export_files(qtbot, w, tmp_path / "export2", "trained", ("model", "h5"))      # the ONNX path ran above
    assert {"model", "h5"} <= check_exported_files(tmp_path / "export2", "trained", trained.model,
                                                   basicsr_checkpoint)
    assert fingerprint(state.model.model) == dense_print and fingerprint(trained.model) == trained_print
    assert not [d for d in dialogs[1:] if d[0] != "question"], dialogs


def test_unrelated_pruned_model_is_said_loudly(qtbot, window: MainWindow, basicsr_checkpoint: Path,
                                               short_clip: Path, tmp_path: Path, dialogs, monkeypatch) -> None:
    """The tiny.yaml toy (a 16-channel BasicVSR-uni from scratch) next to a BasicVSR: no speed-up claimed."""
    w, state = window, window.state
    toy = tmp_path / "toy_pruned.pth"
    save_model(tiny_model("basicvsr-uni", 16, 2), toy,
               {"stages": ["pretrain", "sir", "finetune"], "config": {"model": {"weights": None}}})
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_path(short_clip)
    with qtbot.waitSignal(state.modelChanged, timeout=WAIT_MS):
        w.open_path(basicsr_checkpoint)
    with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
        state.open_checkpoint(toy, as_pruned=True)
    assert state.lineage().status == UNRELATED
    compare = w.panels["compare"]
    assert "NOT derived" in compare.lineage_label.text() and "basicvsr-uni" in compare.lineage_label.text()
    with qtbot.waitSignal(compare.compareFinished, timeout=WAIT_MS):
        assert compare.run() is not None                       # asked first (answered Yes here)
    assert dialogs[-1][0] == "question" and "not derived" in dialogs[-1][1]
    assert "no speed-up shown" in compare.timing.text() and "measured speed-up" not in compare.timing.text()
    # answering No runs nothing
    qtbot.waitUntil(lambda: compare.job is None, timeout=WAIT_MS)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    assert compare.run() is None and compare.job is None and len(asked) == 1

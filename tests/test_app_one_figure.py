"""One figure per model and clip, in every step: the walk a person takes, through the window's widgets (offscreen).

Load → Prune → Compare → Export → Train → Compare → Export → Study on the first frames of the demo clip with a
tiny network. Each model's Y-PSNR (and time per frame) on the clip must read the same in every step that shows it
(``app.figures`` owns them), every figure must say what it covers, and Study's point for the pruned model must be
the model loaded as "pruned" (the trained one), by name — not the Prune step's untrained plan.

Set ``SSL_VSR_WALK_SHOTS=FOLDER`` to also write a PNG of each step as the walk leaves it (to look at).
"""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from app.clips import ClipPair  # noqa: E402
from app.figures import BICUBIC, Figures, clip_psnr, frame_psnr, measure  # noqa: E402
from app.frame_store import FrameStore  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from core.study.clip import Scorer, StudyClip  # noqa: E402
from tests.helpers import tiny_model  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)
from tests.test_app_workflow import (FRAMES, WAIT_MS, basicsr_checkpoint, configure_run,  # noqa: E402,F401
                                     export_files, short_clip)

SHOTS = os.environ.get("SSL_VSR_WALK_SHOTS")


def shoot(qtbot, w: MainWindow, step: str, name: str) -> None:
    """A PNG of ``step`` as the walk leaves it, when SSL_VSR_WALK_SHOTS names a folder."""
    if not SHOTS:
        return
    w.show_step(step)
    qtbot.wait(300)
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    w.grab().save(str(Path(SHOTS) / f"{name}.png"), "PNG")


def compare(qtbot, w: MainWindow) -> None:
    panel = w.panels["compare"]
    w.show_step("compare")
    with qtbot.waitSignal(panel.compareFinished, timeout=WAIT_MS):
        assert panel.run() is not None
    qtbot.waitUntil(lambda: panel.job is None, timeout=WAIT_MS)
    assert w.state.compare.complete


def export_row(w: MainWindow, label: str) -> list[str]:
    tree = w.panels["export"].results
    for i in range(tree.topLevelItemCount()):
        item = tree.topLevelItem(i)
        if item.text(0) == label:
            return [item.text(c) for c in range(tree.columnCount())]
    raise AssertionError(f"no row {label!r}")


def check_compare_says(w: MainWindow, dense, pruned, bicubic) -> None:
    """Compare's words: each series' figure, what it covers (frames, reference, what the time includes)."""
    text = w.panels["compare"].timing.text()
    for name, f in (("dense", dense), ("pruned", pruned), ("bicubic", bicubic)):
        assert f"<b>{name}</b>: {f.psnr:.2f} dB" in text, (name, text)
    for f in (dense, pruned):
        assert f.ms_text() in text
    assert f"Y-PSNR vs GT: mean over all {FRAMES} frames of clip" in text
    assert "the network and the engine" in text and f"{dense.threads} thread" in text and "64×112 LR (H×W)" in text


def check_export_says(w: MainWindow, dense, pruned, bicubic) -> None:
    """Export's words: the .pth file scores what the network it holds scores; dense and bicubic as in Compare."""
    row = export_row(w, "Pruned checkpoint")
    assert row[6] == f"{pruned.psnr:.2f} · {dense.psnr:.2f} · {bicubic.psnr:.2f} dB vs GT", row
    assert row[5] == f"{pruned.ms_per_frame:.0f} at 64×112", row          # the checkpoint is the network
    note = w.panels["export"].results_note.text()
    assert f"all {FRAMES} frames of clip" in note and "the figures Compare and Study show" in note
    assert f"float network {pruned.psnr:.2f} dB, {pruned.ms_text()}" in note, note
    assert f"dense {dense.psnr:.2f} dB, {dense.ms_text()}" in note and f"bicubic {bicubic.psnr:.2f} dB" in note


# -- the walk --------------------------------------------------------------------------------------------------
def test_walk_shows_one_figure_per_model_and_clip(qtbot, window: MainWindow, basicsr_checkpoint: Path,
                                                  short_clip: Path, tmp_path: Path, dialogs) -> None:
    started = time.perf_counter()
    w, state = window, window.state
    # 1 Load
    with qtbot.waitSignal(state.modelChanged, timeout=WAIT_MS):
        w.open_path(basicsr_checkpoint)
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_path(short_clip)
    dense_net = state.model.model

    # 2 Prune: ratio 0.5, exact widths, the raw cut (fast); its predicted time says what it covers
    prune = w.panels["prune"]
    w.show_step("prune")
    prune.align.setCurrentIndex(prune.align.findData(1))
    with qtbot.waitSignal(prune.planUpdated, timeout=WAIT_MS):
        prune.ratio.slider.setValue(500)
    prune.measure_button.click()                      # this device's latency table (a 16-channel net: seconds)
    qtbot.waitUntil(lambda: state.current.latency is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: "fps" in prune.latency_note.text(), timeout=WAIT_MS)
    predicted = prune.latency_note.text()
    assert not prune.latency_note.isHidden() and "predicted for the network streamed once warm" in predicted
    assert "thread" in predicted and "64×112 LR (H×W)" in predicted and "measured time is Compare's" in predicted
    prune.reconstruct_box.setChecked(False)
    with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
        prune.apply_button.click()
    untrained = state.pruned
    shoot(qtbot, w, "prune", "1_prune")

    # 3 Compare: the figures are measured once and kept (app.figures); what Compare prints is them
    compare(qtbot, w)
    dense, cut, bicubic = (state.figure(dense_net), state.figure(untrained.model), state.figure(BICUBIC))
    assert None not in (dense, cut, bicubic)
    assert cut.frames == dense.frames == bicubic.frames == FRAMES and cut.reference == "GT"
    r = state.compare
    assert math.isclose(cut.psnr, float(np.mean(r.psnr["pruned"])), abs_tol=1e-9)      # every frame, the mean
    check_compare_says(w, dense, cut, bicubic)
    shoot(qtbot, w, "compare", "2_compare_cut")

    # 4 Export the cut: the checkpoint's own proof on every frame reads the network's figure
    export_files(qtbot, w, tmp_path / "export1", "cut", ("model", "h5"))
    qtbot.waitUntil(lambda: w.panels["export"].job is None, timeout=WAIT_MS)
    check_export_says(w, dense, cut, bicubic)
    shoot(qtbot, w, "export", "3_export_cut")

    # 5 Train: a few iterations of SIR + finetune; the result is loaded as "pruned"
    train = w.panels["train"]
    w.show_step("train")
    configure_run(w, basicsr_checkpoint, tmp_path / "runs" / "walk")
    with qtbot.waitSignal(train.runEnded, timeout=WAIT_MS) as ended:
        with qtbot.waitSignal(state.prunedChanged, timeout=WAIT_MS):
            assert train.start() is not None
    assert ended.args == ["finished"], dialogs
    trained = state.pruned
    assert trained is not untrained and trained.path.name == "pruned.pth"

    # 6 Compare the trained model: a new run times both networks side by side (the dense time is its new one);
    # the dense network's and bicubic's Y-PSNR are the same figures
    compare(qtbot, w)
    again = state.figure(dense_net)
    assert again.psnr == dense.psnr and state.figure(BICUBIC).psnr == bicubic.psnr
    dense, bicubic = again, state.figure(BICUBIC)
    tuned = state.figure(trained.model)
    assert tuned is not None and tuned is not cut and tuned.frames == FRAMES
    check_compare_says(w, dense, tuned, bicubic)
    shoot(qtbot, w, "compare", "4_compare_trained")

    # 7 Export the trained model
    export_files(qtbot, w, tmp_path / "export2", "trained", ("model", "h5"))
    qtbot.waitUntil(lambda: w.panels["export"].job is None, timeout=WAIT_MS)
    check_export_says(w, dense, tuned, bicubic)
    shoot(qtbot, w, "export", "5_export_trained")

    # 8 Study: a sweep over every frame; its dense point and the trained model's point are the same figures
    study = w.panels["study"]
    w.show_step("study")
    study.kind.setCurrentIndex(study.kind.findData("sweep"))
    study.frames.setValue(0)                           # all frames
    study.ratios.setText("0.5")
    with qtbot.waitSignal(study.studyEnded, timeout=WAIT_MS) as ended:
        assert study.run() is not None
    assert ended.args == ["finished"], dialogs
    sweep = study.results["sweep"]
    points = {p.label: p for p in sweep.points}
    name = f"pruned: {trained.origin}"
    assert set(points) == {"dense", "ratio 0.5", name}, points         # no "current plan": the loaded model
    assert points["dense"].psnr == dense.psnr and points["dense"].ms_per_frame == dense.ms_per_frame
    assert points[name].psnr == tuned.psnr and points[name].ms_per_frame == tuned.ms_per_frame
    assert points[name].params == trained.model.count_parameters(include_spynet=False)
    summary = study.summary.text()
    assert f"dense: {dense.psnr:.2f} dB" in summary and f"{name}: {tuned.psnr:.2f} dB" in summary
    assert f"{tuned.ms_per_frame:.0f} ms/frame" in summary and f"mean over {FRAMES} frames of clip" in summary
    assert "the network and the engine" in summary and "the figures Compare and Export show" in summary
    legend = [item[1].text for item in study.pareto_chart.plotItem.legend.items]
    assert name in legend and not any("plan" in t for t in legend), legend
    shoot(qtbot, w, "study", "6_study_sweep")

    # the same model, the same figure: every step's digits for it
    assert f"{tuned.psnr:.2f}" in w.panels["compare"].timing.text()
    assert export_row(w, "Pruned checkpoint")[6].startswith(f"{tuned.psnr:.2f} ")
    assert not [d for d in dialogs if d[0] != "question"], dialogs
    print(f"walk took {time.perf_counter() - started:.0f} s")


# -- the rule, without a window ------------------------------------------------------------------------------
def _clip(frames: int = 4, gt: bool = True) -> ClipPair:
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (frames, 8, 8, 3), dtype=np.uint8)
    hr = rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8) if gt else None
    return ClipPair("rand", FrameStore(lr), FrameStore(hr) if gt else None, Path("rand"), "given")


def test_one_figure_is_kept_per_network_and_clip() -> None:
    figures, clip = Figures(), _clip()
    net = tiny_model("basicvsr", 8, 1)
    first = measure("pruned", net, clip)
    assert first.frames == 4 and first.ms_per_frame > 0 and first.threads >= 1 and first.size == (8, 8)
    assert figures.record(net, clip, first) is first
    again = measure("pruned", net, clip)
    assert again.psnr == first.psnr                               # deterministic: the same digits
    assert figures.record(net, clip, again) is first              # measured once: the first one stays
    assert figures.get(net, clip) is first
    assert figures.record(net, clip, again, replace=True) is again and figures.get(net, clip) is again   # Compare
    assert figures.get(tiny_model("basicvsr", 8, 1), clip) is None          # another network
    assert figures.get(net, _clip()) is None                                 # another clip
    got = figures.ensure(clip, {"pruned": net}, None, bicubic=True)
    assert got["pruned"] is again and got[BICUBIC].ms_per_frame is None and got[BICUBIC].frames == 4


def test_the_rule_is_the_studys_with_and_without_gt() -> None:
    """Against GT the mean of the frames' PSNRs; against the dense output one PSNR of the whole clip — what
    core.study's Scorer computes, so a sweep's ratios and the app's figures are one kind of number."""
    dense, net = tiny_model("basicvsr", 8, 1), tiny_model("basicvsr", 8, 1)
    for gt in (True, False):
        clip = _clip(gt=gt)
        figures = Figures()
        got = figures.ensure(clip, {"dense": dense, "pruned": net}, dense, bicubic=True)
        lr = np.stack(list(clip.lr))
        study = StudyClip("rand", lr, np.stack(list(clip.gt)) if gt else None)
        scorer = Scorer(study, "cpu")
        scorer.set_reference(scorer.run(dense).frames)
        assert math.isclose(got["pruned"].psnr, scorer.run(net).psnr, abs_tol=1e-9), gt
        assert (got["dense"].psnr is None) == (not gt)             # without GT the dense output is the reference
    assert clip_psnr([10.0, math.inf], "dense") == pytest.approx(10.0 + 10 * math.log10(2))
    assert clip_psnr([10.0, 20.0], "GT") == 15.0
    assert frame_psnr(lr[0], lr[0]) == math.inf


class _Job:
    """What the export job's work calls on its job (progress only)."""

    def report(self, done: int, total: int) -> None:
        pass


@pytest.mark.parametrize("gt", [True, False])
def test_export_proves_a_checkpoint_with_the_networks_figure(tmp_path, gt) -> None:
    """Without a window: a checkpoint's proof on the clip reads its network's figure (vs GT, or vs the dense output
    without GT), and its time is that figure's — one figure per model, whichever step measured it first."""
    from app.export_job import ExportRequest, run_export
    from core.ssl import compute_scores, make_plan, prune_to_plan

    dense = tiny_model("basicvsr", 8, 1)
    pruned = prune_to_plan(dense, make_plan(compute_scores(dense, "l1"), 0.5, align=1, frame_size=(8, 8)))
    clip, figures = _clip(gt=gt), Figures()
    req = ExportRequest(pruned, tmp_path, "p", ("model",), None, {}, {}, dense=dense, clip=clip, figures=figures,
                        clip_name=clip.name)
    [outcome] = run_export(_Job(), req)
    assert getattr(outcome.result, "ok", False), outcome.result
    mine = figures.get(pruned, clip, dense)
    assert mine is not None and outcome.proof.y_psnr == mine.psnr and outcome.proof.ms_per_frame == mine.ms_per_frame
    base = outcome.baseline
    assert base.pruned == mine.psnr and base.where == "all 4 frames of rand" and base.frames == 4
    assert base.reference == ("GT" if gt else "dense output") and (base.dense is not None) == gt
    assert base.bicubic == figures.get(BICUBIC, clip, dense).psnr


def test_study_marks_no_unrelated_pruned_model(qtbot) -> None:
    """A "pruned" model not derived from the dense one (another variant) gets no point on the dense model's front,
    and no Prune-step plan stands in for it."""
    from app.panels.study_panel import StudyPanel
    from app.state import AppState, PrunedModel
    from core.io.checkpoint import LoadedModel
    from tests.study_support import study_model, tiny_clip

    state = AppState()
    panel = StudyPanel(state)
    qtbot.addWidget(panel)
    clip = tiny_clip(frames=2)
    state.set_clip(ClipPair("demo-crop", FrameStore(clip.lr), FrameStore(clip.gt), Path("demo"), "given"))
    state.set_model(LoadedModel(study_model(), Path("tiny.pth"), "plain"))
    state.set_pruned(PrunedModel(tiny_model("basicvsr-uni", 8, 1), "file other.pth", path=Path("other.pth")))
    assert not state.lineage().comparable
    panel.kind.setCurrentIndex(panel.kind.findData("sweep"))
    panel.ratios.setText("0.5")
    with qtbot.waitSignal(panel.studyEnded, timeout=WAIT_MS) as ended:
        assert panel.run() is not None
    assert ended.args == ["finished"]
    assert [p.label for p in panel.results["sweep"].points] == ["dense", "ratio 0.5"]
    assert panel.pareto_chart.plan_cost is None
    state.runner.wait_all(60_000)

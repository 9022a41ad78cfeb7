"""The app's numbers and hands, one case each (offscreen, tiny networks): a time waits for the app's other jobs
and says when one ran anyway; GIL-bound work runs in a child process that Cancel kills; pickers take videos where
videos are accepted; any frames folder can be the GT of any LR clip (and a project keeps it); Cancel ends within
seconds with words that match what was saved; labels follow the state. The walk with a heartbeat is
tests/test_app_walk_heartbeat.py.
"""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import shutil  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from app.alone import WaitingFor, measured_alone  # noqa: E402
from app.child_work import ChildWork, _portable  # noqa: E402
from app.clips import ClipPair, load_clip_pair  # noqa: E402
from app.compare_job import new_result  # noqa: E402
from app.figures import Figure, measure  # noqa: E402
from app.frame_store import FrameStore  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.session import load_project  # noqa: E402
from app.train_form import SECTIONS  # noqa: E402
from app.widgets.config_form import PathEdit  # noqa: E402
from app.workers import JobRunner  # noqa: E402
from core.errors import ClipError  # noqa: E402
from core.events import Cancelled  # noqa: E402
from core.io.checkpoint import save_model  # noqa: E402
from core.io.demo import demo_clip_dir  # noqa: E402
from core.io.frames import write_video  # noqa: E402
from core.io.image_file import read_frame  # noqa: E402
from tests.helpers import tiny_model  # noqa: E402
from tests.qt_support import dialogs, window  # noqa: E402,F401  (fixtures)

WAIT_MS = 120_000
CANCEL_S = 10          # "within seconds"


def small_clip(frames: int = 3) -> ClipPair:
    rng = np.random.default_rng(0)
    return ClipPair("rand", FrameStore(rng.integers(0, 256, (frames, 8, 8, 3), dtype=np.uint8)),
                    FrameStore(rng.integers(0, 256, (frames, 32, 32, 3), dtype=np.uint8)), Path("rand"), "given")


@pytest.fixture
def runner(qtbot):
    r = JobRunner()
    yield r
    r.cancel_all()
    r.wait_all(30_000)


@pytest.fixture
def video_and_gt(tmp_path) -> tuple[Path, Path]:
    demo = demo_clip_dir()
    lr = np.stack([read_frame(f)[0] for f in sorted((demo / "BIx4").iterdir())[:4]])
    gt = tmp_path / "truth"
    gt.mkdir()
    for f in sorted((demo / "GT").iterdir())[:4]:
        shutil.copy(f, gt / f.name)
    return write_video(lr, tmp_path / "clip.mp4"), gt


@pytest.fixture
def dense_file(tmp_path) -> Path:
    path = tmp_path / "tiny.pth"
    save_model(tiny_model("basicvsr", 16, 2), path, {"note": "random tiny test model"})
    return path


# -- a time is measured alone -------------------------------------------------------------------------------
def test_a_time_waits_until_the_other_jobs_end_and_says_for_which(qtbot, runner) -> None:
    gate, events, got = threading.Event(), [], []
    runner.start("measure units on clip", lambda _: gate.wait(60))
    runner.start("compare", lambda _: measure("net", tiny_model(), small_clip()), on_event=events.append,
                 on_success=got.append)
    qtbot.waitUntil(lambda: bool(events), timeout=WAIT_MS)
    assert events[0] == WaitingFor(("measure units on clip",)) and "“measure units on clip”" in events[0].text()
    qtbot.wait(300)
    assert not got                                  # nothing timed while the other job runs
    gate.set()
    qtbot.waitUntil(lambda: bool(got), timeout=WAIT_MS)
    assert events[-1] == WaitingFor(()) and got[0].contended == () and got[0].ms_per_frame > 0


def test_a_job_started_while_timing_is_named_on_the_figure(qtbot, runner) -> None:
    entered, release, got = threading.Event(), threading.Event(), []

    def timed(_) -> set[str]:
        with measured_alone() as contended:
            entered.set()
            release.wait(60)
            return set(contended)

    runner.start("compare", timed, on_success=got.append)
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    runner.start("load other.pth", lambda _: None)
    release.set()
    qtbot.waitUntil(lambda: bool(got), timeout=WAIT_MS)
    assert got[0] == {"load other.pth"}


def test_measuring_this_device_waits_for_the_other_jobs_and_keeps_no_disturbed_table(qtbot, runner, tmp_path,
                                                                                      monkeypatch) -> None:
    """The Prune step's predicted times come from this device's latency table: it is measured alone, and a table
    another job disturbed is said so and not kept on disk (the next "Measure this device" measures again)."""
    import app.current_plan as owner
    from core.profile.latency import table_path
    from tests.latency_support import keyed_synthetic_table

    monkeypatch.setenv("SSL_VSR_CACHE", str(tmp_path))
    entered, release, events, got = threading.Event(), threading.Event(), [], []

    def measured(device, size, num_feat, bidirectional):
        table = keyed_synthetic_table(device, size, num_feat, bidirectional)
        table_path(table.key).parent.mkdir(parents=True, exist_ok=True)
        table_path(table.key).write_text("{}")               # as the real one keeps what it measured
        entered.set()
        release.wait(60)
        return table
    monkeypatch.setattr(owner, "latency_table", measured)
    gate = threading.Event()
    runner.start("measure units on clip", lambda _: gate.wait(60))
    runner.start("latency", owner.CurrentPlan.latency_job((32, 32), 16, True, measure=True), on_event=events.append,
                 on_success=got.append)
    qtbot.waitUntil(lambda: bool(events), timeout=WAIT_MS)
    assert events[0] == WaitingFor(("measure units on clip",)) and not entered.is_set()
    gate.set()
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)
    runner.start("compare", lambda _: None)                  # started while the device is timed
    release.set()
    qtbot.waitUntil(lambda: bool(got), timeout=WAIT_MS)
    table, contended = got[0]
    assert table is not None and contended == ("compare",) and not table_path(table.key).exists()


def test_two_jobs_that_time_take_turns(qtbot, runner) -> None:
    """Of two jobs waiting to time, the earlier goes first (neither waits for the other for ever)."""
    order: list[str] = []

    def timed(name: str):
        def fn(_) -> None:
            with measured_alone():
                order.append(name)
                time.sleep(0.2)
                order.append(name)
        return fn

    runner.start("study", timed("study"))
    runner.start("compare", timed("compare"))
    qtbot.waitUntil(lambda: len(order) == 4, timeout=WAIT_MS)
    assert order in (["study", "study", "compare", "compare"], ["compare", "compare", "study", "study"])


def test_compare_claims_no_speed_up_from_contended_times(window: MainWindow) -> None:
    clip = small_clip()
    r = new_result(clip, ("dense", "pruned"))
    r.complete = True
    r.figures = {"dense": Figure("dense", 30.0, "GT", 3, "rand", (8, 8), 10.0, 2, ("measure units on rand",)),
                 "pruned": Figure("pruned", 29.0, "GT", 3, "rand", (8, 8), 5.0, 2)}
    r.seconds_per_frame = {"dense": 0.010, "pruned": 0.005}
    text = window.panels["compare"]._timing_text(r)
    assert "times not comparable" in text and "measure units on rand" in text and "speed-up" not in text


def test_study_flags_sweep_times_measured_while_another_job_ran() -> None:
    from app.panels.study_panel import _sweep_summary, with_shared
    from core.study.results import ClipInfo, SweepPoint, SweepResult

    point = SweepPoint("dense", 0.0, 0.0, 10, 100, 5, 12.0, 30.0)
    result = SweepResult("dense.pth", ClipInfo("rand", 3, (8, 8), "ground truth"), "l1", 16, (point,), "CPU", 1.0)
    assert with_shared(result, set()) is result and "not comparable" not in _sweep_summary(result)
    text = _sweep_summary(with_shared(result, {"load other.pth"}))
    assert "times not comparable: load other.pth ran while they were measured; run again" in text


def test_training_speed_names_the_jobs_that_shared_the_machine(qtbot, runner) -> None:
    from app.alone import throughput_shared
    from app.panels.train_run_view import TrainRunView
    from core.events import Progress

    release = threading.Event()
    train = runner.start("train", lambda _: release.wait(60))
    train.timing = "timing"                                # as the Train step starts it
    assert throughput_shared(train) == ()
    done: list[object] = []
    runner.start("load other.pth", lambda _: None, on_finish=lambda: done.append(1))
    qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)
    assert throughput_shared(train) == ("load other.pth",)     # it ended before the report: it still ran meanwhile
    assert throughput_shared(train) == ()                      # the next report counts afresh
    view = TrainRunView()
    event = Progress("finetune", 4, 8, {"total": 0.1}, seconds_per_iter=0.5, throughput=6.0)
    view.show(event, ("load other.pth",))
    assert view.status.text().endswith("times not comparable: load other.pth ran meanwhile")
    assert "(shared)" in view.progress.format()
    view.show(event)
    assert "not comparable" not in view.status.text() and "(shared)" not in view.progress.format()
    release.set()


# -- GIL-bound work in a child process ----------------------------------------------------------------------------
def test_child_work_runs_elsewhere_raises_here_and_dies_on_cancel(qtbot, runner) -> None:
    out: dict[str, object] = {}

    def work(job) -> None:
        with ChildWork(job) as child:
            out["pid"] = child.call(os.getpid)
            try:
                child.call(Path("/nonexistent/plan.json").read_text)
            except FileNotFoundError as exc:
                out["raised"] = exc
            try:
                child.call(os._exit, 3)                  # a child that dies is said, never waited for
            except RuntimeError as exc:
                out["died"] = exc
            out["sleeping"] = time.monotonic()
            child.call(time.sleep, 300)

    job = runner.start("export", work, on_cancel=lambda: out.setdefault("cancelled", time.monotonic()))
    qtbot.waitUntil(lambda: "sleeping" in out, timeout=WAIT_MS)
    assert out["pid"] != os.getpid() and "plan.json" in str(out["raised"]) and "exit code 3" in str(out["died"])
    job.cancel()
    qtbot.waitUntil(lambda: "cancelled" in out, timeout=CANCEL_S * 1000)
    assert out["cancelled"] - out["sleeping"] < CANCEL_S


def test_a_model_sent_to_the_child_stays_where_it_was_in_the_caller(qtbot, runner) -> None:
    """torch's pickler moved a sent tensor's memory into shared memory in place, under the threads reading it."""
    import torch

    model = torch.nn.Conv2d(3, 8, 3)
    where = [(p.data_ptr(), p.is_shared()) for p in model.parameters()]
    out: dict[str, object] = {}

    def work(job) -> None:
        with ChildWork(job) as child:
            out["sum"] = child.call(torch.Tensor.sum, model.weight.detach())
            out["back"] = child.call(torch.ones, 4)

    runner.start("scores", work)
    qtbot.waitUntil(lambda: "back" in out, timeout=WAIT_MS)
    assert [(p.data_ptr(), p.is_shared()) for p in model.parameters()] == where == [(p.data_ptr(), False)
                                                                                   for p in model.parameters()]
    assert torch.allclose(out["sum"], model.weight.sum()) and not out["back"].is_shared()


def test_what_crosses_is_an_equal_copy_of_every_kind_of_tensor() -> None:
    """Tensors cross as numpy arrays where numpy has one; the rest (bfloat16, autograd leaves) the standard way."""
    import multiprocessing

    import torch

    from app.child_work import _receive, _send

    sent = {"view": torch.arange(6.0).reshape(2, 3).t(), "bf16": torch.randn(3, dtype=torch.bfloat16),
            "leaf": torch.randn(2, requires_grad=True), "param": torch.nn.Parameter(torch.randn(2, 2)),
            "ints": torch.arange(4, dtype=torch.int64)}
    ours, theirs = multiprocessing.Pipe()
    _send(ours, sent)
    back = _receive(theirs)
    for name, tensor in sent.items():
        assert back[name].dtype == tensor.dtype and torch.equal(back[name].detach(), tensor.detach()), name
        assert back[name].data_ptr() != tensor.data_ptr() and type(back[name]) is type(tensor), name
    assert back["leaf"].requires_grad and back["param"].requires_grad
    back["view"] += 1                                   # a writable copy of its own
    assert torch.equal(sent["view"], torch.arange(6.0).reshape(2, 3).t())


def test_an_exception_that_cannot_cross_keeps_its_words() -> None:
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    crossed = _portable(Odd(1, 2))
    assert isinstance(crossed, RuntimeError) and "Odd: 1/2" in str(crossed)
    assert isinstance(_portable(Cancelled("x")), Cancelled)


# -- pickers and GT -------------------------------------------------------------------------------------------------
def test_where_a_video_is_accepted_the_picker_takes_one(qtbot, monkeypatch, tmp_path) -> None:
    kinds = {f.key: f.kind for _, fields in SECTIONS for f in fields}
    assert kinds["data.lr_root"] == "clip" and kinds["prune.calib"] == "clip"
    edit = PathEdit("clip")
    qtbot.addWidget(edit)
    seen = {}

    def pick(parent, caption, folder, pattern="", *a, **k):
        seen["pattern"] = pattern
        return str(tmp_path / "my.mp4"), pattern
    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path / "frames"))
    folder, video = edit.button.menu().actions()
    video.trigger()
    assert edit.edit.text() == str(tmp_path / "my.mp4") and "*.mp4" in seen["pattern"]
    folder.trigger()
    assert edit.edit.text() == str(tmp_path / "frames")


def test_any_frames_folder_is_the_gt_of_any_lr_clip(video_and_gt, tmp_path) -> None:
    video, gt = video_and_gt
    pair = load_clip_pair(video, gt=gt)
    assert len(pair) == 4 and pair.gt is not None and pair.gt.frame_shape == (256, 448, 3)
    assert pair.gt_source == gt and pair.name == "clip"
    (gt / sorted(p.name for p in gt.iterdir())[-1]).unlink()
    with pytest.raises(ClipError, match="4 LR frames but 3 GT frames"):
        load_clip_pair(video, gt=gt)
    with pytest.raises(ClipError, match="expected 4× the LR"):
        load_clip_pair(video, gt=demo_clip_dir() / "BIx4", max_frames=4)


def test_a_clip_or_gt_that_leads_nowhere_says_why(tmp_path) -> None:
    """The app's clip opener names a link loop and a dangling link as such, as the CLI does (not "does not
    exist" for a file the user can see listed)."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    with pytest.raises(ClipError, match=r"clip not found: .*loop \(a loop of symbolic links\)"):
        load_clip_pair(loop)
    with pytest.raises(ClipError, match=r"dangling \(a symbolic link to nothing: it points to .*gone\)"):
        load_clip_pair(demo_clip_dir() / "BIx4", gt=dangling)
    with pytest.raises(ClipError, match=r"nowhere \(no such file or folder\)"):
        load_clip_pair(tmp_path / "nowhere")


def test_a_project_brings_the_gt_folder_back(qtbot, window: MainWindow, video_and_gt, tmp_path) -> None:
    video, gt = video_and_gt
    state = window.state
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        state.open_clip(video, gt=gt)
    path = window.save_project(tmp_path / "with gt.sslproj")
    assert load_project(path).gt == str(gt)
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        state.open_clip(video)                         # the same clip without its GT
    assert state.clip.gt is None
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        window.open_project(path)
    assert state.clip.gt is not None and state.clip.gt_source == gt and state.clip.source == video


# -- Cancel and labels ------------------------------------------------------------------------------------------
def test_train_cancel_ends_in_seconds_and_says_nothing_was_saved(qtbot, window: MainWindow, dense_file) -> None:
    train = window.panels["train"]
    train.form.set_value("model.weights", str(dense_file))
    train.form.set_value("finetune.iterations", 2)
    with qtbot.waitSignal(train.runEnded, timeout=CANCEL_S * 1000) as ended:
        assert train.start() is not None
        assert train.status.text().startswith("Running prune → finetune")     # not "No run yet."
        train.cancel()
        assert "Cancelling" in train.status.text()
    assert ended.args == ["cancelled"]
    status = train.status.text()
    assert "nothing to resume" in status and "continues it" not in status, status


def test_compare_stopped_does_not_say_computing(qtbot, window: MainWindow, dense_file, video_and_gt) -> None:
    w, state = window, window.state
    with qtbot.waitSignal(state.modelChanged, timeout=WAIT_MS):
        w.open_path(dense_file)
    with qtbot.waitSignal(state.clipChanged, timeout=WAIT_MS):
        w.open_path(video_and_gt[0])
    compare = w.panels["compare"]
    assert compare.run() is not None
    compare.cancel()
    qtbot.waitUntil(lambda: compare.job is None, timeout=CANCEL_S * 1000)
    assert "Computing" not in compare.timing.text(), compare.timing.text()

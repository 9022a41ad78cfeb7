"""What the window currently holds (dense model, pruned model, clip, plan) and the jobs that load it.

Panels read from here and listen to its signals; they never talk to each other directly. Loading happens in
background jobs; the results are assigned here, in the GUI thread, so every signal fires in that thread.
"""
from __future__ import annotations

import gc
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from core.io.checkpoint import LoadedModel, load_checkpoint
from core.models.basicvsr import BasicVSR
from core.errors import UserError
from core.recover.status import RecoveryStatus, recovery_status
from core.ssl import Plan, UnitScores, plan_from_json
from core.ssl.lineage import Lineage, check_lineage

from .clips import ClipPair, load_clip_pair
from .criterion_scores import FRAME_CRITERIA, clip_scores, weight_scores
from .current_plan import CurrentPlan
from .figures import Figure, Figures
from .frame_store import FrameStore
from .workers import Job, JobRunner

DEFAULT_FRAME_SIZE = (180, 320)      # the paper's LR size, used for MACs until a clip is loaded


@dataclass
class PrunedModel:
    """A pruned network and where it came from (a plan applied here, a training run, or a file)."""

    model: BasicVSR
    origin: str
    plan: Plan | None = None
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)      # a model file's meta (a run's plan as JSON)

    @property
    def status(self) -> RecoveryStatus:
        """Raw cut, reconstructed at the cut, or trained (what its meta says, as for a model file)."""
        return recovery_status(self.meta, pruned=True)


@dataclass
class CompareResult:
    """Super-resolved frames and timings of a comparison, filled in by its job while the window shows it.

    Frames live in disk-backed stores (``FrameStore``): ``outputs[name][i]`` is frame i once ``len`` says it
    exists. ``psnr`` lists grow in frame order; ``complete`` is set when every series is done.
    """

    clip: ClipPair
    bicubic: FrameStore
    outputs: dict[str, FrameStore] = field(default_factory=dict)          # 'dense' / 'pruned'
    seconds_per_frame: dict[str, float] = field(default_factory=dict)
    psnr: dict[str, list[float]] = field(default_factory=dict)            # per frame vs GT (Y channel)
    lineage: Lineage | None = None                                        # of the pruned model vs the dense one
    compared: dict[str, int] = field(default_factory=dict)                # id() of each network it ran
    complete: bool = False
    reference: str = "GT"            # what ``psnr`` is measured against: "GT", or "dense" (the dense output)
    figures: dict[str, Figure] = field(default_factory=dict)             # this run's, per series (app.figures)


def stored_plan(meta: dict[str, Any]) -> Plan | None:
    """The plan a pruned model file recorded (locks, caps and widths included), or None if absent or damaged."""
    try:
        return plan_from_json(meta["plan"]) if isinstance(meta.get("plan"), dict) else None
    except UserError:
        return None


def _import_engine() -> None:
    """What the engine imports lazily and slowly (see ``AppState.warm_up_engine``); onnx is an optional extra."""
    importlib.import_module("torch._dynamo")
    try:
        importlib.import_module("onnx")
    except ImportError:
        pass


class AppState(QObject):
    modelChanged = Signal()            # the dense (reference) model
    prunedChanged = Signal()
    clipChanged = Signal()
    planChanged = Signal()
    compareChanged = Signal()
    scoresChanged = Signal()           # the frame-measured criteria were (re)measured on the current clip
    error = Signal(str, object, str)   # title, exception, traceback
    message = Signal(str)              # one line for the status bar

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.model: LoadedModel | None = None
        self.pruned: PrunedModel | None = None
        self.clip: ClipPair | None = None
        self.plan: Plan | None = None
        self.current = CurrentPlan(self)        # the plan's one owner: its pruned network and latency
        self.figures = Figures()                # the one owner of each network's Y-PSNR and time on a clip
        self.compare: CompareResult | None = None
        self._scores: dict[str, UnitScores] = {}

    # -- derived values ---------------------------------------------------------------------------------
    @property
    def frame_size(self) -> tuple[int, int]:
        """(h, w) of the LR clip, or the paper's 180×320 without one."""
        return self.clip.lr_size if self.clip is not None else DEFAULT_FRAME_SIZE

    def lineage(self) -> Lineage | None:
        """Whether the pruned slot holds a network derived from the dense one (None unless both are loaded)."""
        if self.model is None or self.pruned is None:
            return None
        p, dense = self.pruned, self.model
        return check_lineage(dense.spec, p.model.spec, dense_path=dense.path, pruned_path=p.path,
                             dense_params=dense.model.count_parameters(include_spynet=False),
                             pruned_params=p.model.count_parameters(include_spynet=False), pruned_meta=p.meta,
                             plan_spec_before=p.plan.spec_before if p.plan is not None else None)

    def figure(self, network: Any) -> Figure | None:
        """``network``'s figure on the current clip (against the dense output without GT), once measured."""
        dense = self.model.model if self.model is not None else None
        return self.figures.get(network, self.clip, dense)

    def scores(self, criterion: str) -> UnitScores | None:
        """Unit scores of the dense model (computed with the model's loading job, off the GUI thread)."""
        return self._scores.get(criterion) if self.model is not None else None

    # -- setters (GUI thread) ---------------------------------------------------------------------------
    def set_model(self, loaded: LoadedModel, scores: dict[str, UnitScores] | None = None,
                  as_pruned: bool | None = None) -> None:
        """Dense checkpoints become the reference model; pruned ones fill the pruned slot.

        ``as_pruned`` overrides the guess from the widths: a training run's result goes to the pruned slot even
        when its plan kept every unit (it must never replace the reference it is compared with).

        ``scores`` (per criterion) come from the loading job: torch work on the GUI thread is avoided
        because two threads' OpenMP teams on a small CPU slow each other down by orders of magnitude.
        """
        if as_pruned if as_pruned is not None else loaded.is_pruned:
            self.set_pruned(PrunedModel(loaded.model, f"file {loaded.path.name}", stored_plan(loaded.meta), loaded.path,
                                        loaded.meta))
            return
        self.model = loaded
        self._scores = dict(scores) if scores is not None else weight_scores(loaded.model)
        self.plan = None
        self.current.set(None)
        if self.current.recovery is not None:
            self.current.set_recovery(None)     # a reconstruction belongs to the previous dense network
        if self.pruned is not None and self.pruned.plan is not None and self.pruned.path is None:
            self.set_pruned(None)      # a plan applied here belongs to the previous dense model (files stay)
        self.modelChanged.emit()
        self._rescore_on_clip()            # the frame-measured criteria follow, in the background
        self.message.emit(f"loaded {loaded.path.name} ({loaded.source_format})")
        self._warn_lineage()

    def set_pruned(self, pruned: PrunedModel | None) -> None:
        self.pruned = pruned
        self.prunedChanged.emit()
        self._warn_lineage()

    def _warn_lineage(self) -> None:
        lineage = self.lineage()
        if lineage is not None and not lineage.comparable:
            self.message.emit(f"pruned model {self.pruned.origin} is NOT derived from the dense model (see Compare)")

    def set_clip(self, clip: ClipPair) -> None:
        self.clip = clip
        self.compare = None
        self._rescore_on_clip()
        self.clipChanged.emit()
        self.compareChanged.emit()
        self.message.emit(f"clip {clip.name}: {len(clip.lr)} frames, {clip.lr_size[0]}×{clip.lr_size[1]} LR (H×W)"
                          + ("" if clip.gt is not None else ", no ground truth"))

    def _rescore_on_clip(self) -> None:
        """Drop the frame-measured scores of the previous clip (or model) and measure them on the current clip (the
        demo clip while none is open), in the background: loading a model does not wait for them."""
        if self.model is None or not FRAME_CRITERIA:
            return
        for c in FRAME_CRITERIA:
            self._scores.pop(c, None)
        self.scoresChanged.emit()
        model, clip = self.model, self.clip

        def done(scores: dict[str, UnitScores]) -> None:
            if self.model is model and self.clip is clip:      # still the model and clip they were measured for
                self._scores.update(scores)
                self.scoresChanged.emit()

        where = clip.name if clip is not None else "the demo clip"
        self.runner.start(f"measure units on {where}", lambda job: clip_scores(job, model.model, clip),
                          on_success=done, on_failure=lambda e, t: self.error.emit("Cannot measure the units", e, t))

    def set_plan(self, plan: Plan | None, target_ms: float | None = None) -> None:
        """The Prune step's plan; ``self.current`` owns it and its pruned network (``target_ms``: made for one)."""
        self.plan = plan
        self.current.set(plan, target_ms)
        self.planChanged.emit()

    def set_compare(self, result: CompareResult | None) -> None:
        self.compare = result
        self.compareChanged.emit()

    # -- loading jobs ------------------------------------------------------------------------------------
    def warm_up_engine(self) -> Job:
        """Import now what torch imports lazily on a run's first optimizer (torch._dynamo, ~800 modules).

        Imported in the middle of a run, it held the GIL for up to 200 ms at a time and froze the window; at
        start-up it runs while the first checkpoint loads. Then the ~350,000 objects alive by then are frozen
        out of the garbage collector: a full collection, which any thread may trigger and which holds the
        GIL throughout, took 190 ms with them and takes a few ms without. ``onnx`` likewise: its import holds the
        GIL for 1.3 s at once, and the first ONNX export or proof would import it in the middle of a step.
        """
        return self.runner.start("warm-up", lambda _: _import_engine(), on_finish=gc.freeze)

    def open_checkpoint(self, path: str | Path, then: Callable[[], None] | None = None,
                        as_pruned: bool | None = None) -> Job:
        """Load a checkpoint (and score its units) in the background; ``as_pruned`` as in ``set_model``."""

        def work(_: Job) -> tuple[LoadedModel, dict[str, UnitScores] | None]:
            loaded = load_checkpoint(path)
            pruned = as_pruned if as_pruned is not None else loaded.is_pruned
            scores = None if pruned else weight_scores(loaded.model)
            return loaded, scores

        def done(out: tuple[LoadedModel, dict[str, UnitScores] | None]) -> None:
            self.set_model(*out, as_pruned=as_pruned)
            if then is not None:
                then()

        self.message.emit(f"loading {Path(path).name} …")
        return self.runner.start(f"load {Path(path).name}", work, on_success=done,
                                 on_failure=lambda e, t: self.error.emit("Cannot open checkpoint", e, t))

    def open_clip(self, path: str | Path, treat_as_gt: bool = False,
                  then: Callable[[], None] | None = None, gt: str | Path | None = None) -> Job:
        """Read a clip (frames folder, video, or a folder with GT/ and BIx4/) in the background; ``gt``: a frames
        folder (or video) that is the ground truth of the LR clip ``path``."""
        def work(_: Job) -> ClipPair:
            return load_clip_pair(Path(path), treat_as_gt, gt=Path(gt) if gt is not None else None)

        def done(clip: ClipPair) -> None:
            self.set_clip(clip)
            if then is not None:
                then()

        self.message.emit(f"reading clip {Path(path).name} …")
        return self.runner.start(f"clip {Path(path).name}", work, on_success=done,
                                 on_failure=lambda e, t: self.error.emit("Cannot open clip", e, t))

    def describe(self) -> dict[str, Any]:
        """Short labels for the status bar."""
        model = f"{self.model.path.name}" if self.model else "no model"
        if self.pruned is not None:
            model += f" · pruned: {self.pruned.origin}"
            lineage = self.lineage()
            if lineage is not None and not lineage.comparable:
                model += " (NOT derived from it)"
        clip = f"{self.clip.name}" if self.clip else "no clip"
        return {"model": model, "clip": clip}

"""The main window: the five workflow steps, menus and shortcuts, status bar, drag and drop, recent files,
projects, and a clean shutdown that never leaves a training run half-written.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMainWindow,
                               QMenu, QProgressBar, QStackedWidget, QWidget)

from core.device import describe_device, resolve_device
from core.errors import UserError
from core.io.demo import demo_clip_dir
from core.io.frames import VIDEO_EXTS
from core.io.weights import official_weight

from .dialogs import ask_yes_no, show_error
from .panels.compare_panel import ComparePanel
from .panels.export_panel import ExportPanel
from .panels.model_panel import ModelPanel
from .panels.prune_panel import PrunePanel
from .panels.study_panel import StudyPanel
from .panels.train_panel import TrainPanel
from .resources import icon
from .session import PROJECT_SUFFIX, Project, load_project, save_project
from .state import AppState
from .threads_menu import add_threads_menu

STEPS = ("model", "prune", "train", "compare", "export", "study")
STEP_TITLES = {"model": "1  Model", "prune": "2  Prune", "train": "3  Train", "compare": "4  Compare",
               "export": "5  Export", "study": "6  Study"}
CHECKPOINT_EXTS = (".pth", ".pt", ".ckpt", ".bin")
MAX_RECENT = 8
# Fits a 1280×800 screen with a title bar and a desktop panel (every step's layout is checked at this size).
DEFAULT_SIZE = (1264, 720)


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.state = AppState(self)
        self.official = official_weight("REDS4")
        self.setWindowTitle("SSL-VSR Explorer — structured pruning for BasicVSR")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)

        self.panels = {
            "model": ModelPanel(self.state, self.official is not None),
            "prune": PrunePanel(self.state),
            "train": TrainPanel(self.state),
            "compare": ComparePanel(self.state),
            "export": ExportPanel(self.state),
            "study": StudyPanel(self.state),
        }
        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        self.steps.setFixedWidth(150)
        self.stack = QStackedWidget()
        for key in STEPS:
            QListWidgetItem(icon(key), STEP_TITLES[key], self.steps)
            self.stack.addWidget(self.panels[key])
        self.steps.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.steps)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self._build_status_bar()
        self._build_menus()
        self.panels["model"].openRequested.connect(self.open_checkpoint_dialog)
        self.panels["model"].officialRequested.connect(self.load_official)
        self.panels["compare"].openClipRequested.connect(self.open_clip_dialog)
        self.panels["compare"].openGtRequested.connect(self.open_gt_dialog)
        self.panels["train"].prunedModelReady.connect(lambda path: self.state.open_checkpoint(path, as_pruned=True))
        self.state.error.connect(lambda title, exc, trace: show_error(self, title, exc, trace))
        self.state.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        for signal in (self.state.modelChanged, self.state.prunedChanged, self.state.clipChanged):
            signal.connect(self._update_status)
        self.state.runner.busyChanged.connect(self.busy.setVisible)
        self._restore_window()
        self._update_status()

    # -- construction -----------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel()
        self.clip_label = QLabel()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        self.busy.setToolTip("A background job is running")
        device = resolve_device("auto")
        text = describe_device(device)
        if device.type == "cuda":
            text = f"GPU: {text}"
        self.device_label = QLabel(f"Device: {text}  ·  torch {torch.__version__.split('+')[0]}")
        for w in (self.model_label, self.clip_label):
            bar.addPermanentWidget(w)
        bar.addPermanentWidget(self.busy)
        bar.addPermanentWidget(self.device_label)

    def _action(self, menu: QMenu, text: str, slot, shortcut: QKeySequence | str | None = None) -> QAction:
        act = menu.addAction(text)
        act.triggered.connect(slot)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        return act

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self._action(file, "Open &checkpoint…", self.open_checkpoint_dialog, QKeySequence.StandardKey.Open)
        self._action(file, "Open c&lip folder…", self.open_clip_dialog, "Ctrl+Shift+O")
        self._action(file, "Open &video…", self.open_video_dialog, "Ctrl+Shift+V")
        self._action(file, "Open &ground truth for this clip…", self.open_gt_dialog, "Ctrl+Shift+G")
        self.recent_menu = file.addMenu("Open &recent")
        file.addSeparator()
        self._action(file, "Open &project…", self.open_project_dialog, "Ctrl+Shift+P")
        self._action(file, "&Save project…", self.save_project_dialog, QKeySequence.StandardKey.Save)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view = self.menuBar().addMenu("&Steps")
        for i, key in enumerate(STEPS):
            self._action(view, STEP_TITLES[key].split()[-1], lambda _=False, k=key: self.show_step(k), f"Ctrl+{i + 1}")
        train = self.menuBar().addMenu("&Train")
        self._action(train, "&Start run", lambda: self.panels["train"].start(), "Ctrl+R")
        self._action(train, "&Pause / resume", self.panels["train"].toggle_pause, "Ctrl+P")
        self._action(train, "&Cancel run", self.panels["train"].cancel, "Ctrl+.")
        compare = self.menuBar().addMenu("&Compare")
        panel = self.panels["compare"]
        self._action(compare, "&Run comparison", panel.run, "F5")
        self._action(compare, "&Play / pause", panel.play_button.toggle, "Space").setShortcutContext(
            Qt.ShortcutContext.WindowShortcut)
        self._action(compare, "Zoom &in", lambda: panel.view.zoom(1.25), QKeySequence.StandardKey.ZoomIn)
        self._action(compare, "Zoom &out", lambda: panel.view.zoom(0.8), QKeySequence.StandardKey.ZoomOut)
        self._action(compare, "&Fit", panel.view.reset_zoom, "Ctrl+0")
        self._action(compare, "Save view as &PNG…", lambda: panel.save_view(), "Ctrl+Shift+S")
        add_threads_menu(self.menuBar(), self.settings, lambda n: self.statusBar().showMessage(
            f"CPU threads: {n} (for jobs started from now on)", 8000))
        self._refresh_recent()

    # -- steps and status ---------------------------------------------------------------------------------
    def show_step(self, key: str) -> None:
        self.steps.setCurrentRow(STEPS.index(key))

    def _update_status(self) -> None:
        d = self.state.describe()
        self.model_label.setText(f"Model: {d['model']}")
        self.clip_label.setText(f"Clip: {d['clip']}")

    # -- opening things ------------------------------------------------------------------------------------
    def load_defaults(self) -> None:
        """The demo clip, then the official REDS4 weights (when installed): a first start shows real content."""
        demo = demo_clip_dir()
        then = self.load_official if self.official is not None else None
        if (demo / "BIx4").is_dir():
            self.state.open_clip(demo, then=then)
        elif then is not None:
            then()

    def load_official(self) -> None:
        if self.official is not None:
            self.state.open_checkpoint(self.official)

    def open_path(self, path: str | Path) -> None:
        """Open whatever ``path`` is: a project, a checkpoint, or a clip (folder or video)."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == PROJECT_SUFFIX:
            self.open_project(p)
        elif p.is_file() and suffix in CHECKPOINT_EXTS:
            self.state.open_checkpoint(p)
            self._remember(p)
        elif p.is_dir() or suffix in VIDEO_EXTS:
            self.state.open_clip(p, self.panels["compare"].as_gt.isChecked())
            self._remember(p)
        else:
            self.state.open_checkpoint(p)      # let the loader say precisely what is wrong with it

    def open_checkpoint_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open BasicVSR checkpoint", self._last_dir(),
                                              "Checkpoints (*.pth *.pt *.ckpt *.bin);;All files (*)")
        if path:
            self.open_path(path)

    def open_clip_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open clip (frames folder, or a folder with GT/ and BIx4/)",
                                                self._last_dir())
        if path:
            self.open_path(path)

    def open_video_dialog(self) -> None:
        pattern = " ".join(f"*{ext}" for ext in VIDEO_EXTS)
        path, _ = QFileDialog.getOpenFileName(self, "Open video clip", self._last_dir(), f"Videos ({pattern})")
        if path:
            self.open_path(path)

    def open_gt_dialog(self) -> None:
        """Any frames folder as the ground truth of the open LR clip (a frame for each, 4× its size)."""
        clip = self.state.clip
        if clip is None:
            self.state.message.emit("open the LR clip first, then its ground truth")
            return
        path = QFileDialog.getExistingDirectory(self, f"Ground-truth frames of {clip.name} (4× its size)",
                                                str(clip.source.parent))
        if path:
            self.state.open_clip(clip.source, gt=path)

    def _last_dir(self) -> str:
        recent = self._recent()
        return str(Path(recent[0]).parent) if recent else str(Path.home())

    # -- recent files ----------------------------------------------------------------------------------------
    def _recent(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember(self, path: Path) -> None:
        items = [str(path.resolve())] + [r for r in self._recent() if r != str(path.resolve())]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        recent = self._recent()
        for i, path in enumerate(recent):
            act = self.recent_menu.addAction(f"&{i + 1}  {path}")
            act.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(recent))

    # -- projects -----------------------------------------------------------------------------------------------
    def current_project(self) -> Project:
        s, prune = self.state, self.panels["prune"].settings()
        pruned_path = s.pruned.path if s.pruned is not None else None
        return Project(checkpoint=str(s.model.path) if s.model else None,
                       pruned_checkpoint=str(pruned_path) if pruned_path else None,
                       clip=str(s.clip.source) if s.clip else None,
                       clip_is_gt=s.clip is not None and s.clip.degradation.startswith("BI"),
                       gt=str(s.clip.gt_source) if s.clip is not None and s.clip.gt_source else None,
                       ratio=prune["ratio"], criterion=prune["criterion"], align=prune["align"],
                       overrides=prune["overrides"], train=self.panels["train"].settings(),
                       widths=prune["widths"], target_ms=prune["target_ms"])

    def save_project_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save project", f"project{PROJECT_SUFFIX}",
                                              f"Projects (*{PROJECT_SUFFIX})")
        if path:
            try:
                self.save_project(path, confirmed=True)
            except UserError as exc:
                show_error(self, "Cannot save project", exc)

    def save_project(self, path: str | Path, confirmed: bool = False) -> Path:
        """``confirmed``: the file dialog asked before replacing ``path`` (only that exact file may be replaced)."""
        target = Path(path).with_suffix(PROJECT_SUFFIX)
        written = save_project(self.current_project(), target, overwrite=confirmed and target == Path(path))
        self._remember(written)
        self.state.message.emit(f"project saved to {written}")
        return written

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_dir(), f"Projects (*{PROJECT_SUFFIX})")
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> None:
        """Reload the clip, the checkpoints and the settings, in that order (each in a background job)."""
        try:
            project = load_project(path)
        except Exception as exc:
            show_error(self, "Cannot open project", exc)
            return
        self._remember(Path(path))
        self.panels["train"].restore(project.train)
        restore_prune = lambda: self.panels["prune"].restore(project.ratio, project.criterion, project.align,
                                                             project.overrides, project.target_ms, project.widths)

        def open_models() -> None:
            if project.checkpoint:
                self.state.open_checkpoint(project.checkpoint, then=lambda: (restore_prune(), open_pruned()))
            else:
                open_pruned()

        def open_pruned() -> None:
            if project.pruned_checkpoint:
                self.state.open_checkpoint(project.pruned_checkpoint)

        if project.clip:
            self.state.open_clip(project.clip, project.clip_is_gt, then=open_models, gt=project.gt)
        else:
            open_models()

    # -- drag and drop -------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            self.open_path(url.toLocalFile())
        event.acceptProposedAction()

    # -- window state and shutdown -------------------------------------------------------------------------------
    def _restore_window(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            self._fit_screen()
        else:
            self.resize(*DEFAULT_SIZE)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        self.steps.setCurrentRow(int(self.settings.value("window/step", 0)))

    def _fit_screen(self) -> None:
        """A geometry saved on a larger screen is shrunk to this one (never below the window's minimum)."""
        screen = self.screen()
        if screen is None:
            return
        avail, least = screen.availableGeometry(), self.minimumSizeHint()
        w = min(self.width(), max(avail.width(), least.width()))
        h = min(self.height(), max(avail.height(), least.height()))
        if (w, h) != (self.width(), self.height()):
            self.resize(w, h)

    def closeEvent(self, event: QCloseEvent) -> None:
        train = self.panels["train"]
        if train.is_running() and not ask_yes_no(
                self, "Training is running",
                "A training run is in progress. Stop it (its state is saved so it can be resumed) and quit?"):
            event.ignore()
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/step", self.steps.currentRow())
        self.state.runner.cancel_all()
        if not self.state.runner.wait_all(120_000):
            self.state.message.emit("still stopping background work …")
            QTimer.singleShot(500, self.close)
            event.ignore()
            return
        event.accept()

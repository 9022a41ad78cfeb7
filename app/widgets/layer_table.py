"""Per-layer table of the current plan with two editable columns: Lock and Max ratio (the plan's overrides).

Only the Kept and Ratio columns change while the slider moves, so a move repaints two columns, not the table.
"""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from core.ssl import LayerOverride, Plan

COLUMNS = ("Layer", "Group", "Kind", "Units", "Kept", "Ratio", "Lock", "Max ratio")
KEPT, RATIO, LOCK, MAX_RATIO = 4, 5, 6, 7
Index = QModelIndex | QPersistentModelIndex
NO_OVERRIDE = LayerOverride()


class LayerTableModel(QAbstractTableModel):
    overridesChanged = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._plan: Plan | None = None
        self._names: tuple[str, ...] = ()
        self.overrides: dict[str, LayerOverride] = {}

    # -- data in ------------------------------------------------------------------------------------
    def set_plan(self, plan: Plan | None) -> None:
        names = tuple(l.name for l in plan.layers) if plan is not None else ()
        if names != self._names:
            self.beginResetModel()
            self._plan, self._names = plan, names
            self.overrides = {k: v for k, v in self.overrides.items() if k in names}
            self.endResetModel()
            return
        self._plan = plan
        if names:
            self.dataChanged.emit(self.index(0, KEPT), self.index(len(names) - 1, RATIO))

    def set_overrides(self, overrides: dict[str, LayerOverride]) -> None:
        """Replace all overrides (e.g. from a saved project); unknown layer names are dropped."""
        self.overrides = {k: v for k, v in overrides.items() if not self._names or k in self._names}
        if self._names:
            self.dataChanged.emit(self.index(0, LOCK), self.index(len(self._names) - 1, MAX_RATIO))
        self.overridesChanged.emit()

    # -- Qt model interface --------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._names)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == LOCK:
            return base | Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == MAX_RATIO:
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if self._plan is None or not index.isValid():
            return None
        layer = self._plan.layers[index.row()]
        col = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            if col == KEPT:
                return layer.n_kept
            if col == RATIO:
                return f"{layer.ratio:.1%}"
            if col == MAX_RATIO:
                cap = self.overrides.get(layer.name, NO_OVERRIDE).max_ratio
                return "" if cap is None else f"{cap:.2f}"
            return (layer.name, layer.group, layer.kind, layer.total, None, None, None)[col]
        if role == Qt.ItemDataRole.CheckStateRole and col == LOCK:
            locked = self.overrides.get(layer.name, NO_OVERRIDE).locked
            return Qt.CheckState.Checked if locked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (3, KEPT, RATIO, MAX_RATIO):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and layer.limited:
            return "a floor, lock or cap kept more units here than the global ranking asked for"
        return None

    def setData(self, index: Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if self._plan is None or not index.isValid():
            return False
        name = self._names[index.row()]
        o = self.overrides.get(name, NO_OVERRIDE)
        if index.column() == LOCK and role == Qt.ItemDataRole.CheckStateRole:
            o = LayerOverride(Qt.CheckState(value) == Qt.CheckState.Checked, o.max_ratio)
        elif index.column() == MAX_RATIO and role == Qt.ItemDataRole.EditRole:
            text = str(value).strip().rstrip("%")
            if not text:
                o = LayerOverride(o.locked, None)
            else:
                try:
                    cap = float(text)
                except ValueError:
                    return False
                cap = cap / 100 if cap > 1 else cap
                if not 0.0 <= cap <= 1.0:
                    return False
                o = LayerOverride(o.locked, cap)
        else:
            return False
        if o == NO_OVERRIDE:
            self.overrides.pop(name, None)
        else:
            self.overrides[name] = o
        self.dataChanged.emit(index, index)
        self.overridesChanged.emit()
        return True

"""The one owner of "the current plan and its pruned network" (and of this device's latency table).

Why: Prune, Compare, Export and Train all need the plan the user built; each rebuilding the pruned network on
its own made three copies and let them disagree. Here the network is built once per plan, off the GUI thread,
and every consumer gets its own copy (``Module.to`` changes a module in place, so no consumer may share one).
"""
from __future__ import annotations

import copy
import threading
from typing import Callable

import torch
from PySide6.QtCore import QObject, Signal

from core.models.basicvsr import BasicVSR
from core.profile.latency import LatencyTable, latency_table, table_key, table_path
from core.ssl import Plan, PlanSettings, prune_to_plan


class CurrentPlan(QObject):
    latencyChanged = Signal()          # a latency table arrived (or was dropped for another size)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.plan: Plan | None = None
        self.latency: LatencyTable | None = None
        self.target_ms: float | None = None          # when the plan was made for a latency target
        self._lock = threading.Lock()
        self._built: tuple[Plan, int, BasicVSR] | None = None   # (plan, id of its dense network, pruned)

    @property
    def settings(self) -> PlanSettings | None:
        """What the Train step copies into ``sir.*`` and project files store."""
        return None if self.plan is None else self.plan.settings

    def set(self, plan: Plan | None, target_ms: float | None = None) -> None:
        self.plan, self.target_ms = plan, target_ms

    def network(self, dense: BasicVSR, plan: Plan | None = None) -> BasicVSR:
        """A private copy of ``dense`` pruned to ``plan`` (default: the current one); built once per plan.

        Safe to call from worker threads.
        """
        plan = plan if plan is not None else self.plan
        if plan is None:
            raise ValueError("no plan to prune to")
        with self._lock:
            built = self._built
            if built is None or built[0] is not plan or built[1] != id(dense):
                built = (plan, id(dense), prune_to_plan(dense, plan))
                self._built = built
            return copy.deepcopy(built[2])

    # -- latency -------------------------------------------------------------------------------------
    def predicted_ms(self, plan: Plan | None = None) -> float | None:
        """This device's predicted ms per frame for the plan's network, when a table for its size is loaded."""
        plan = plan if plan is not None else self.plan
        t = self.latency
        if plan is None or t is None or tuple(t.size) != tuple(plan.frame_size):
            return None
        if t.num_feat != plan.spec_before.num_feat or t.bidirectional != plan.spec_before.bidirectional:
            return None
        return t.predict_ms(plan.spec_after)

    def set_latency(self, table: LatencyTable | None) -> None:
        self.latency = table
        self.latencyChanged.emit()

    @staticmethod
    def latency_job(size: tuple[int, int], num_feat: int, bidirectional: bool,
                    measure: bool) -> Callable[[object], LatencyTable | None]:
        """Work for a background job: the cached table (``measure=False``) or a fresh measurement."""
        def work(_job: object) -> LatencyTable | None:
            device = torch.device("cpu")
            if not measure and not table_path(table_key(device, size, num_feat, bidirectional)).is_file():
                return None
            return latency_table(device, size, num_feat, bidirectional)
        return work

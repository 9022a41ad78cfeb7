"""PlanSettings: everything besides the network that decides a plan — ratio, criterion, floor, width multiple,
locks and caps — as one immutable value.

Why a value of its own: the plan a person builds in the Prune step (or with ``plan --lock``) has to arrive intact
in the training config (``sir.*``), in SIR's choice of units, in the final cut and in the files written; one
value with one JSON form is what travels, so no hop can drop a lock.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..errors import PlanError
from .criteria import DEFAULT_CRITERION, get_criterion


@dataclass(frozen=True)
class LayerOverride:
    """GUI overrides for one layer: ``locked`` keeps every unit; ``max_ratio`` caps its pruning ratio."""

    locked: bool = False
    max_ratio: float | None = None


@dataclass(frozen=True)
class PlanSettings:
    ratio: float = 0.5
    criterion: str = DEFAULT_CRITERION
    min_keep: int = 1
    align: int = 1
    locks: tuple[str, ...] = ()                      # layers kept whole (sorted)
    caps: tuple[tuple[str, float], ...] = ()         # (layer, highest pruning ratio), sorted by layer
    widths: tuple[tuple[str, int], ...] = ()         # (layer, units kept): a latency target's per-layer widths

    def __post_init__(self) -> None:
        get_criterion(self.criterion)
        for name, cap in self.caps:
            if isinstance(cap, bool) or not isinstance(cap, (int, float)) or not 0.0 <= cap <= 1.0:
                raise PlanError(f"max ratio {cap} for layer {name!r} is outside [0, 1]")
        object.__setattr__(self, "locks", tuple(sorted(set(self.locks))))
        object.__setattr__(self, "caps", tuple(sorted((str(k), float(v)) for k, v in dict(self.caps).items())))
        for name, n in self.widths:
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise PlanError(f"width {n!r} for layer {name!r} must be a positive whole number")
        object.__setattr__(self, "widths", tuple(sorted((str(k), int(v)) for k, v in dict(self.widths).items())))

    @classmethod
    def from_overrides(cls, ratio: float, criterion: str = DEFAULT_CRITERION, min_keep: int = 1, align: int = 1,
                       overrides: Mapping[str, LayerOverride] | None = None) -> "PlanSettings":
        """From the per-layer overrides the Prune step's table edits."""
        overrides = dict(overrides or {})
        locks = tuple(k for k, o in overrides.items() if o.locked)
        caps = tuple((k, o.max_ratio) for k, o in overrides.items() if not o.locked and o.max_ratio is not None)
        return cls(float(ratio), criterion, int(min_keep), int(align), locks, caps)

    @property
    def overrides(self) -> dict[str, LayerOverride]:
        out = {name: LayerOverride(max_ratio=cap) for name, cap in self.caps}
        out.update({name: LayerOverride(locked=True) for name in self.locks})
        return out

    def check_layers(self, names: Iterable[str]) -> None:
        """Refuse a lock or cap on a layer the network does not have, naming the closest real ones."""
        known = list(names)
        for name in (*self.locks, *(k for k, _ in self.caps), *(k for k, _ in self.widths)):
            if name not in known:
                raise PlanError(unknown_layer_message(name, known))

    def to_json(self) -> dict[str, Any]:
        """The training config's ``sir`` keys use the same names: ``lock`` (a list) and ``max_ratio`` (a map)."""
        return {"ratio": self.ratio, "criterion": self.criterion, "min_keep": self.min_keep, "align": self.align,
                "lock": list(self.locks), "max_ratio": dict(self.caps), "widths": dict(self.widths)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PlanSettings":
        try:
            ratio = float(data.get("ratio", data.get("requested_ratio", 0.5)))
            if not math.isfinite(ratio):
                raise ValueError(ratio)
            caps = dict(data.get("max_ratio") or {})
            widths = dict(data.get("widths") or {})
            return cls(ratio, str(data.get("criterion", DEFAULT_CRITERION)), int(data.get("min_keep", 1)),
                       int(data.get("align", 1)), tuple(str(v) for v in data.get("lock") or ()),
                       tuple((str(k), float(v)) for k, v in caps.items()),
                       tuple((str(k), int(v)) for k, v in widths.items()))
        except (TypeError, ValueError, AttributeError, OverflowError) as e:     # OverflowError: int(inf)
            raise PlanError(f"plan settings are damaged ({e})") from None


def unknown_layer_message(name: str, known: Iterable[str]) -> str:
    """'no layer named X (closest: a, b, c)' — one line for a typo in ``--lock`` or ``sir.lock``."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"closest: {', '.join(close)}" if close else f"layers are named like {known[0]}, fusion, upconv1"
    return f"no prunable layer named {name!r} ({hint})"

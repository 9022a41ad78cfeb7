"""Is a "pruned" network really a pruned version of the dense one it is shown next to?

A comparison (speed-up, PSNR loss) only means something between a dense network and a network derived from it.
After a training run from scratch, or after loading a pruned file made from other weights, the two slots can
hold unrelated networks; this module says so from what is known without running anything: the architectures
(variant, stream width, block count, no layer wider than the dense one) and what the pruned model's file
recorded (its plan's totals and the checkpoint it was made from).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..io.weights import official_weight
from ..models.spec import ArchSpec

DERIVED, UNVERIFIED, UNRELATED = "derived", "unverified", "unrelated"
_MISSING = object()
_NO_SOURCE = "its file does not record which checkpoint it was made from"


@dataclass(frozen=True)
class Lineage:
    """The verdict and the reasons behind it, one short sentence each."""

    status: str                  # DERIVED | UNVERIFIED (nothing contradicts, something unknown) | UNRELATED
    reasons: tuple[str, ...] = ()

    @property
    def comparable(self) -> bool:
        """Whether a speed-up / quality-loss figure between the two networks means anything."""
        return self.status != UNRELATED

    def summary(self) -> str:
        head = {DERIVED: "derived from the dense model",
                UNVERIFIED: "lineage not verified",
                UNRELATED: "NOT derived from the dense model"}[self.status]
        return head + (": " + "; ".join(self.reasons) if self.reasons else "")


def _arch_conflicts(dense: ArchSpec, pruned: ArchSpec) -> list[str]:
    if dense.variant != pruned.variant:
        return [f"the pruned model is a {pruned.variant}, the dense one a {dense.variant}"]
    out = []
    if dense.num_feat != pruned.num_feat:
        out.append(f"stream width {pruned.num_feat} vs the dense model's {dense.num_feat}")
    if dense.num_block != pruned.num_block:
        out.append(f"{pruned.num_block} residual blocks per trunk vs the dense model's {dense.num_block}")
    if out:
        return out
    wider = [name for name in ("fusion", "upconv1", "upconv2", "conv_hr")
             if getattr(pruned, name) > getattr(dense, name)]
    for trunk in ("forward", "backward"):
        wider += [f"{trunk} block {k}" for k, (d, p) in enumerate(zip(dense.trunk_blocks(trunk),
                                                                      pruned.trunk_blocks(trunk))) if p.mid > d.mid]
    if wider:
        out.append(f"layers wider than in the dense model ({', '.join(wider[:3])})")
    return out


def recorded_source(meta: Mapping[str, Any]) -> Any:
    """The checkpoint a model file says it was made from: a string, None (trained from scratch), or _MISSING.

    Looks where this project's writers put it: the meta of the file an export was made from (first: the GUI
    records its dense model beside it, which need not be the source), an export's ``dense_checkpoint``,
    ``prune``'s ``source``, a training run's ``config.model.weights`` (None with a pretrain stage: from scratch).
    """
    inner = meta.get("pruned_model_meta")
    found = recorded_source(inner) if isinstance(inner, Mapping) and inner else _MISSING
    if found is not _MISSING:            # what the exported model itself recorded beats the app's dense path
        return found
    for key in ("dense_checkpoint", "source"):
        if isinstance(meta.get(key), str) and meta[key]:
            return meta[key]
    config = meta.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("model"), Mapping) and "weights" in config["model"]:
        weights = config["model"]["weights"]
        if weights is None and "pretrain" in (meta.get("stages") or config.get("stages") or ()):
            return None
        if isinstance(weights, str) and weights:
            return weights
    return _MISSING


def _resolve(source: str) -> Path | None:
    if source.startswith("official:"):
        return official_weight(source.split(":", 1)[1])
    return Path(source).expanduser()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_lineage(dense: ArchSpec, pruned: ArchSpec, *, dense_path: str | Path | None = None,
                  pruned_path: str | Path | None = None,
                  dense_params: int | None = None, pruned_params: int | None = None,
                  pruned_meta: Mapping[str, Any] | None = None,
                  plan_spec_before: ArchSpec | None = None) -> Lineage:
    """Whether ``pruned`` can be, and is recorded to be, a pruned version of ``dense``.

    ``plan_spec_before``: the network an in-app plan was made for (the strongest evidence). ``pruned_meta``: the
    pruned file's meta (its plan's totals, its source). ``*_params``: parameter counts without SpyNet, checked
    against the plan totals recorded in the file.
    """
    conflicts = _arch_conflicts(dense, pruned)
    if conflicts:
        return Lineage(UNRELATED, tuple(conflicts))
    if plan_spec_before is not None:
        if plan_spec_before.with_(meta={}) != dense.with_(meta={}):
            return Lineage(UNRELATED, ("its plan was made for a network of another shape",))
        return Lineage(DERIVED, ("pruned here from the dense model's plan",))
    meta = dict(pruned_meta or {})
    plan = meta.get("plan") if isinstance(meta.get("plan"), Mapping) else None
    if plan is None and isinstance(meta.get("pruned_model_meta"), Mapping):
        inner = meta["pruned_model_meta"].get("plan")
        plan = inner if isinstance(inner, Mapping) else None
    if plan is not None:
        before = (plan.get("before") or {}).get("params")
        after = (plan.get("after") or {}).get("params")
        if dense_params is not None and isinstance(before, int) and before != dense_params:
            return Lineage(UNRELATED, (f"its plan was made for a network of {before:,} parameters, the dense model "
                                       f"has {dense_params:,}",))
        if pruned_params is not None and isinstance(after, int) and after != pruned_params:
            return Lineage(UNRELATED, (f"its recorded plan promises {after:,} parameters, it has {pruned_params:,}",))
    source = recorded_source(meta)
    if source is None:
        return Lineage(UNRELATED, ("it was trained from scratch (model.weights: null), not from the dense model",))
    if source is _MISSING:
        return Lineage(UNVERIFIED, (_NO_SOURCE,))
    resolved = _resolve(source)
    if pruned_path is not None and resolved is not None and _same_file(resolved, Path(pruned_path)):
        return Lineage(UNVERIFIED, (_NO_SOURCE,))
    if dense_path is not None and resolved is not None and _same_file(resolved, Path(dense_path)):
        return Lineage(DERIVED, (f"made from {Path(dense_path).name}",))
    shown = resolved.name if resolved is not None else source
    where = f"the loaded dense model is {Path(dense_path).name}" if dense_path is not None else "no dense file"
    return Lineage(UNVERIFIED, (f"it was made from {shown}, {where}",))

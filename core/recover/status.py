"""What a model file's metadata says about how its network was made (one owner of "is this a raw cut?")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

RECONSTRUCTION_KEY = "reconstruction"   # meta entry written by reconstruction at the cut (core.recover)
RAW_CUT_TRAINING = "none (zero-shot)"   # meta["training"] of a cut nobody trained


@dataclass(frozen=True)
class RecoveryStatus:
    pruned: bool
    reconstructed: bool
    trained: bool

    @property
    def raw_cut(self) -> bool:
        """A pruned network neither reconstructed nor trained: its outputs are usually noise."""
        return self.pruned and not self.reconstructed and not self.trained

    def summary(self) -> str:
        if not self.pruned:
            return "dense network"
        if self.raw_cut:
            return "raw cut (not reconstructed, not trained): expect noise, not video"
        parts = (["reconstructed at the cut"] if self.reconstructed else []) + (["trained"] if self.trained else [])
        return "pruned, " + " and ".join(parts)


def recovery_status(meta: Mapping[str, Any] | None, pruned: bool) -> RecoveryStatus:
    """Read a model file's ``meta`` (``LoadedModel.meta``): files written by ``prune`` record
    ``training: "none (zero-shot)"`` and, when reconstructed, a ``reconstruction`` entry; training runs record
    their stages instead."""
    meta = meta or {}
    # A pruned file that does not say it is a zero-shot cut came from training (or from elsewhere): not flagged.
    trained = pruned and meta.get("training") != RAW_CUT_TRAINING
    return RecoveryStatus(pruned=pruned, reconstructed=bool(meta.get(RECONSTRUCTION_KEY)), trained=trained)

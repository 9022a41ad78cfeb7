"""What a model file's metadata says about how its network was made (one owner of "is this a raw cut?")."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..io.demo import DEMO_CLIP_NAME

RECONSTRUCTION_KEY = "reconstruction"   # meta entry written by reconstruction at the cut (core.recover)
RAW_CUT_TRAINING = "none (zero-shot)"   # meta["training"] of a cut nobody trained


@dataclass(frozen=True)
class RecoveryStatus:
    pruned: bool
    reconstructed: bool
    trained: bool
    below_bicubic: bool = False     # reconstructed, but its output stayed further from the dense one than bicubic
    demo_calibrated: bool = False   # reconstructed on the bundled (synthetic) demo clip, not on the user's video
    measured_margin: float | None = None    # dB over bicubic, measured on LR frames (core.recover.measured)

    @property
    def measured_below_bicubic(self) -> bool:
        """Measured worse than bicubic upscaling, whatever the file says (NaN counts as worse)."""
        return self.measured_margin is not None and not self.measured_margin >= 0

    @property
    def raw_cut(self) -> bool:
        """A pruned network neither trained nor recovered by reconstruction: far below the dense network (noise when ranked by weights alone)."""
        return self.pruned and (self.measured_below_bicubic or not self.trained and (not self.reconstructed
                                                                                     or self.below_bicubic))

    @property
    def demo_only(self) -> bool:
        """Recovered only on the synthetic demo clip: on real video such networks have scored below bicubic."""
        return self.pruned and self.reconstructed and self.demo_calibrated and not self.trained and not self.raw_cut

    def summary(self) -> str:
        if not self.pruned:
            return "dense network"
        if self.measured_below_bicubic:
            return (f"measured on LR frames, its output is {-self.measured_margin:.2f} dB worse than bicubic "
                    f"upscaling (LR consistency), as a raw cut's is, whatever its file says")
        if self.raw_cut and self.reconstructed:
            return "cut reconstructed but not recovered (further from the dense network than bicubic), not trained"
        if self.raw_cut:
            return "raw cut (not reconstructed, not trained): expect far less than the dense network, often noise"
        if self.demo_only:
            return "pruned, reconstructed at the cut on the bundled demo clip (synthetic) only, not trained"
        parts = (["reconstructed at the cut"] if self.reconstructed else []) + (["trained"] if self.trained else [])
        return "pruned, " + " and ".join(parts)


def recovery_status(meta: Mapping[str, Any] | None, pruned: bool) -> RecoveryStatus:
    """Read a model file's ``meta`` (``LoadedModel.meta``): files written by ``prune`` record
    ``training: "none (zero-shot)"`` and, when reconstructed, a ``reconstruction`` entry; training runs record
    their stages instead."""
    meta = meta or {}
    # A pruned file that does not say it is a zero-shot cut came from training (or from elsewhere): not flagged.
    trained = pruned and meta.get("training") != RAW_CUT_TRAINING
    rec = meta.get(RECONSTRUCTION_KEY)
    below = isinstance(rec, Mapping) and rec.get("recovered") is False
    demo = isinstance(rec, Mapping) and rec.get("calib") == DEMO_CLIP_NAME
    return RecoveryStatus(pruned=pruned, reconstructed=bool(rec), trained=trained, below_bicubic=below,
                          demo_calibrated=demo)

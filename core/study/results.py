"""Study results as plain data: JSON-able dataclasses, written through core.io.output and read back checked.

A study takes minutes on a CPU; its result is the thing worth keeping. Everything here is numbers and strings
(no tensors, no plans), so a result saved today reopens in any later version of the app or in a script.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import UserError
from ..io.missing import why_missing
from ..io.output import write_text

STUDY_FORMAT = "ssl-vsr-study"
STUDY_VERSION = 1
MAX_STUDY_BYTES = 32 * 2**20


class StudyError(UserError):
    """A study that cannot run as asked, or a results file that cannot be read back."""


@dataclass(frozen=True)
class ClipInfo:
    """What a study measured on: the clip, and whether PSNR is against ground truth or the dense output."""

    name: str
    frames: int
    lr_size: tuple[int, int]                 # (h, w)
    reference: str                           # "ground truth" | "dense output"
    channel: str = "Y"                       # "Y" | "RGB"

    @property
    def has_gt(self) -> bool:
        return self.reference == "ground truth"


@dataclass(frozen=True)
class GroupSensitivity:
    """One layer group pruned alone: its layers, how many units went, and what that cost on the clip."""

    name: str                                # e.g. "backward.3" (a block) or "upconv1"
    trunk: str                               # backward | forward | head
    layers: tuple[str, ...]
    units_pruned: int
    units_total: int
    params_saved: int                        # parameters removed (no SpyNet)
    macs_saved: int                          # MACs per LR frame removed (no SpyNet)
    psnr: float                              # on the clip, against the study's reference (inf: identical)
    drop: float | None                       # dense PSNR − this PSNR; None without GT (no dense score to drop from)


@dataclass(frozen=True)
class SensitivityResult:
    kind = "sensitivity"
    checkpoint: str
    clip: ClipInfo
    ratio: float                             # fraction of each group's units pruned
    criterion: str
    granularity: str                         # block | layer
    dense_psnr: float | None                 # None without GT (the dense output is the reference)
    groups: tuple[GroupSensitivity, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def value_label(self) -> str:
        """What ``value`` measures (chart axis, CLI column): the drop with GT, fidelity to dense without."""
        if self.clip.has_gt:
            return f"PSNR drop vs dense ({self.clip.channel}, dB; higher = more sensitive)"
        return f"PSNR vs dense output ({self.clip.channel}, dB; lower = more sensitive)"

    def value(self, group: GroupSensitivity) -> float:
        return group.drop if self.clip.has_gt and group.drop is not None else group.psnr

    def ranked(self) -> list[GroupSensitivity]:
        """Most sensitive first."""
        if self.clip.has_gt:
            return sorted(self.groups, key=lambda g: -(g.drop or 0.0))
        return sorted(self.groups, key=lambda g: g.psnr)


@dataclass(frozen=True)
class SweepPoint:
    """One network of a sweep: the dense model, a global ratio, or a given plan (e.g. the app's current one)."""

    label: str
    ratio: float                             # requested global ratio (0 for dense)
    achieved_ratio: float
    params: int                              # without SpyNet
    macs: int                                # per LR frame at the clip's size, without SpyNet
    macs_spynet: int
    ms_per_frame: float                      # measured: whole clip through the network, as ``sr`` does
    psnr: float                              # against the study's reference (inf: identical to it)
    trained: bool = False                    # after the short SIR + finetune of ``SweepResult.training``
    psnr_zero_shot: float | None = None      # before that training, when trained


@dataclass(frozen=True)
class SweepResult:
    kind = "sweep"
    checkpoint: str
    clip: ClipInfo
    criterion: str
    align: int
    points: tuple[SweepPoint, ...]           # points[0] is the dense model
    device: str
    seconds: float
    training: dict[str, Any] | None = None   # the budget of the per-ratio SIR + finetune, when run
    notes: tuple[str, ...] = ()

    @property
    def dense(self) -> SweepPoint:
        return self.points[0]

    def front(self, cost: str = "macs") -> list[SweepPoint]:
        """The Pareto front (best PSNR for its cost), cheapest first."""
        return [self.points[i] for i in pareto_front(self.points, cost)]


COSTS = ("macs", "ms_per_frame", "params")


def pareto_front(points: Iterable[SweepPoint], cost: str = "macs") -> list[int]:
    """Indices of the points no other point beats (no more cost and more PSNR, or less cost and no less PSNR)."""
    if cost not in COSTS:
        raise StudyError(f"unknown cost axis {cost!r} (use one of: {', '.join(COSTS)})")
    pts = list(points)
    order = sorted(range(len(pts)), key=lambda i: (getattr(pts[i], cost), -pts[i].psnr))
    front, best = [], -math.inf
    for i in order:
        if pts[i].psnr > best:
            front.append(i)
            best = pts[i].psnr
    return front


Result = SensitivityResult | SweepResult


# -- JSON ----------------------------------------------------------------------------------------------------
def _finite(value: Any) -> Any:
    """inf/nan → None so the file is strict JSON (an exact copy of the reference is +inf dB)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


GENERIC_FOLDERS = ("gt", "hr", "lr", "bix4", "bdx4", "lrx4")


def portable_name(path: str | None) -> str | None:
    """A path as a study file records it: no machine folders, just the file or clip it names.

    ``/home/me/models/BasicVSR_REDS4.pth`` → ``BasicVSR_REDS4.pth``; ``/data/vid4/calendar/GT`` → ``calendar/GT``
    (a GT or LR folder is named by its clip). A study file is shared (``docs/studies``, a colleague's machine),
    so where the inputs lay on the machine that made it is of no use to its reader and should not leak.
    """
    if not path:
        return path
    parts = [s for s in re.split(r"[\\/]+", str(path)) if s and s != "."]
    if not parts:
        return str(path)
    if len(parts) > 1 and parts[-1].lower() in GENERIC_FOLDERS and parts[-2] != "..":
        return f"{parts[-2]}/{parts[-1]}"
    return parts[-1]


def to_json(result: Result) -> dict[str, Any]:
    """The result as a study file holds it (strict JSON; input paths reduced to names: ``portable_name``)."""
    data = _finite(asdict(result))
    data["checkpoint"] = portable_name(data["checkpoint"])
    if isinstance(data.get("training"), dict):
        for key in ("train_gt", "train_lr"):
            if isinstance(data["training"].get(key), str):
                data["training"][key] = portable_name(data["training"][key])
    return {"format": STUDY_FORMAT, "version": STUDY_VERSION, "kind": result.kind, **data}


def dumps(result: Result) -> str:
    return json.dumps(to_json(result), indent=2, allow_nan=False)


def save_study(result: Result, path: str | Path, *, overwrite: bool = False, inputs: Iterable[Path] = ()) -> Path:
    """Write ``result`` as JSON under the output rule (temp + move; no overwrite unless asked).

    The file names its checkpoint and training data by name only (``portable_name``), never by machine path.
    """
    return write_text(path, dumps(result) + "\n", overwrite=overwrite, inputs=tuple(inputs))


def load_study(path: str | Path) -> Result:
    """Read a study file back; a ``StudyError`` in one line for anything that is not one."""
    p = Path(path)
    if not p.is_file():
        missing = why_missing(p, "study file")
        raise StudyError(f"{p}: {missing}" if missing else f"{p}: not a study file (a folder, device or FIFO)")
    if p.stat().st_size > MAX_STUDY_BYTES:
        raise StudyError(f"{p}: {p.stat().st_size:,} bytes is too large for a study file")
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudyError(f"{p}: not a study file (not JSON: {e})") from None
    return from_json(raw, str(p))


def from_json(raw: Any, where: str = "study") -> Result:
    if not isinstance(raw, dict) or raw.get("format") != STUDY_FORMAT:
        raise StudyError(f"{where}: not a study file (no \"format\": \"{STUDY_FORMAT}\")")
    if raw.get("version") != STUDY_VERSION:
        raise StudyError(f"{where}: study file version {raw.get('version')!r} is not supported")
    try:
        clip = raw["clip"]
        info = ClipInfo(str(clip["name"]), int(clip["frames"]), tuple(int(v) for v in clip["lr_size"]),
                        str(clip["reference"]), str(clip.get("channel", "Y")))
        common = dict(checkpoint=str(raw["checkpoint"]), clip=info, criterion=str(raw["criterion"]),
                      seconds=float(raw["seconds"]), notes=tuple(str(n) for n in raw.get("notes", ())))
        if raw.get("kind") == "sensitivity":
            groups = tuple(GroupSensitivity(str(g["name"]), str(g["trunk"]), tuple(str(v) for v in g["layers"]),
                                            int(g["units_pruned"]), int(g["units_total"]), int(g["params_saved"]),
                                            int(g["macs_saved"]), _num(g["psnr"]),
                                            None if g["drop"] is None else float(g["drop"]))
                           for g in raw["groups"])
            return SensitivityResult(ratio=float(raw["ratio"]), granularity=str(raw["granularity"]),
                                     dense_psnr=None if raw["dense_psnr"] is None else float(raw["dense_psnr"]),
                                     groups=groups, **common)
        if raw.get("kind") == "sweep":
            points = tuple(SweepPoint(str(q["label"]), float(q["ratio"]), float(q["achieved_ratio"]),
                                      int(q["params"]), int(q["macs"]), int(q["macs_spynet"]),
                                      float(q["ms_per_frame"]), _num(q["psnr"]), bool(q.get("trained", False)),
                                      None if q.get("psnr_zero_shot") is None else float(q["psnr_zero_shot"]))
                           for q in raw["points"])
            if not points:
                raise ValueError("no points")
            training = raw.get("training")
            return SweepResult(align=int(raw["align"]), points=points, device=str(raw["device"]),
                               training=dict(training) if isinstance(training, dict) else None, **common)
    except (KeyError, TypeError, ValueError) as e:
        raise StudyError(f"{where}: damaged study file ({type(e).__name__}: {e})") from None
    raise StudyError(f"{where}: unknown study kind {raw.get('kind')!r} (sensitivity or sweep)")


def _num(value: Any) -> float:
    """JSON null stands for +inf (a PSNR against an identical reference)."""
    return math.inf if value is None else float(value)

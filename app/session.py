"""A project file: everything needed to come back to where one left off (no weights, only paths and settings).

Plain JSON, written atomically, read defensively: a damaged or foreign file is a ``ProjectError`` with one line.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError
from core.io.output import write_text
from core.ssl import LayerOverride

PROJECT_FORMAT = "ssl-vsr-project"
PROJECT_VERSION = 1
PROJECT_SUFFIX = ".sslproj"


class ProjectError(UserError):
    """A project file that cannot be read."""


@dataclass
class Project:
    checkpoint: str | None = None
    pruned_checkpoint: str | None = None
    clip: str | None = None
    clip_is_gt: bool = False
    gt: str | None = None                                   # a GT folder (or video) named beside the LR clip
    ratio: float = 0.5
    criterion: str = "l1"
    align: int = 1
    overrides: dict[str, LayerOverride] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)     # the Train panel's settings, incl. run_dir
    widths: dict[str, int] = field(default_factory=dict)    # a latency target's per-layer widths (exact plan)
    target_ms: float | None = None                          # the latency target the widths were planned for

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["overrides"] = {k: asdict(v) for k, v in self.overrides.items()}
        return {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, **data}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "Project":
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{where}: not a project file of this app")
        if data.get("version") != PROJECT_VERSION:
            raise ProjectError(f"{where}: project version {data.get('version')!r} is not supported")
        try:
            overrides = {str(k): LayerOverride(bool(v.get("locked", False)),
                                               None if v.get("max_ratio") is None else float(v["max_ratio"]))
                         for k, v in dict(data.get("overrides") or {}).items()}
            return cls(checkpoint=data.get("checkpoint"), pruned_checkpoint=data.get("pruned_checkpoint"),
                       clip=data.get("clip"), clip_is_gt=bool(data.get("clip_is_gt", False)),
                       gt=None if data.get("gt") is None else str(data["gt"]),
                       ratio=float(data.get("ratio", 0.5)), criterion=str(data.get("criterion", "l1")),
                       align=int(data.get("align", 1)), overrides=overrides, train=dict(data.get("train") or {}),
                       widths={str(k): int(v) for k, v in dict(data.get("widths") or {}).items()},
                       target_ms=None if data.get("target_ms") is None else float(data["target_ms"]))
        except (TypeError, ValueError, AttributeError) as e:
            raise ProjectError(f"{where}: damaged project file ({e})") from None


def save_project(project: Project, path: str | Path, overwrite: bool = False) -> Path:
    """Write the project file; an existing file is replaced only with ``overwrite`` (the user said so)."""
    path = Path(path)
    write_text(path, json.dumps(project.to_json(), indent=2), overwrite=overwrite)
    return path


def load_project(path: str | Path) -> Project:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProjectError(f"{path}: not a readable project file ({e})") from None
    return Project.from_json(data, str(path))

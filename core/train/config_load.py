"""Reading the training configuration: one YAML file and ``key.sub=value`` overrides into a typed, checked config.

Every key is checked before anything runs: an unknown key or a wrong type raises a ``ConfigError`` that names the
key, then ``config_check`` judges the values. Relative paths in a YAML file are taken relative to that file; paths
given as ``--set`` overrides relative to the working directory.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..errors import ConfigError
from ..io.safe_yaml import YAMLLimitError, load_yaml_file, load_yaml_text
from .config import PATH_KEYS, TrainConfig
from .config_check import check_config


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Read a YAML config (or start from the defaults when ``path`` is None), apply ``key.sub=value`` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        loaded = load_yaml_file(p)      # bounded: alias bombs, binary files, huge files refused in one line
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
        raw = _resolve_paths(loaded or {}, p.resolve().parent)
    for item in overrides:
        key, value = _parse_override(item)
        _set_nested(raw, key, _resolve_paths_value(key, value, Path.cwd()))
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a config from plain data (unknown keys and bad values raise ConfigError)."""
    cfg = _build(TrainConfig, raw, "")
    check_config(cfg)
    return cfg


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (written into every run folder)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


# -- overrides ---------------------------------------------------------------------------------------
def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not of the form key.sub=value")
    try:
        value = load_yaml_text(text, f"override {key}") if text.strip() else None
    except YAMLLimitError:
        raise
    except ConfigError:       # not YAML: taken as the plain string the user typed
        value = text
    return key, value


def _set_nested(raw: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _resolve_paths(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    for key in PATH_KEYS:
        section, name = key.split(".")
        node = raw.get(section)
        if isinstance(node, dict) and name in node:
            node[name] = _resolve_paths_value(key, node[name], base)
    return raw


def _resolve_paths_value(key: str, value: Any, base: Path) -> Any:
    if key not in PATH_KEYS or not isinstance(value, str) or value.startswith("official:"):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


# -- typed construction ----------------------------------------------------------------------------
def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "the config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} (known here: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in raw.items():
        tp = hints[name]
        key = f"{prefix}{name}"
        kwargs[name] = _build(tp, value, f"{key}.") if dataclasses.is_dataclass(tp) else _coerce(value, tp, key)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {_coerce(k, kt, f"{key}"): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not math.isfinite(value)) or value != int(value)):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 2e-4 (no dot) as a string
            except ValueError:
                pass
        if isinstance(value, int) and abs(value) > 1e308:   # math.isfinite would raise OverflowError
            raise ConfigError(f"{key} must be a finite number, got an integer of {len(str(abs(value)))} digits")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return str(value)
    raise TypeError(f"unsupported config type {tp} for {key}")


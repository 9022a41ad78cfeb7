"""JSON from untrusted files and metadata, bounded before it is built and refused in one line.

Why: ``json.loads`` accepts what no file of ours holds and what later code cannot take: a document nested
200,000 deep (a ``RecursionError`` traceback, here or in the first code that walks it), ``NaN`` and
``Infinity`` literals, and numbers such as ``1e400`` that silently become ``inf`` (then ``int(inf)`` is an
``OverflowError`` traceback). Plans, the JSON in model files and the metadata of our ONNX files all come through
here (the YAML counterpart is ``safe_yaml``).
"""
from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from ..errors import UserError

__all__ = ["MAX_DEPTH", "JSONError", "JSONSyntaxError", "load_json_text"]

MAX_DEPTH = 64                  # our deepest JSON (a plan with its layers) is 4 levels
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.S)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONError(UserError):
    """JSON refused for its nesting, its numbers or its syntax."""


class JSONSyntaxError(JSONError):
    """Text that is not JSON at all (as opposed to JSON refused for a bound)."""


class _NotFinite(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


def _constant(text: str) -> float:
    raise _NotFinite(text)


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings ignored), found without recursion."""
    steps = (_STEP[m] for m in _BRACKET.findall(_STRING.sub('""', text)))
    return max(accumulate(steps, initial=0))


def load_json_text(text: str, where: str, max_depth: int = MAX_DEPTH, finite: bool = True) -> Any:
    """``json.loads(text)`` refusing, in one ``JSONError`` line that starts with ``where``: nesting deeper than
    ``max_depth``, ``NaN``/``Infinity`` and numbers out of float range (unless ``finite`` is False: JSON that
    ``json.dumps`` wrote from saved measurements, which may hold NaN), integers of more digits than Python
    converts, and invalid JSON (``JSONSyntaxError``)."""
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONError(f"{where}: refused, JSON nested {depth:,} levels deep (the limit is {max_depth})")
    numbers = {"parse_float": _finite, "parse_constant": _constant} if finite else {}
    try:
        return json.loads(text, **numbers)
    except _NotFinite as e:
        raise JSONError(f"{where}: refused, the number {str(e)[:40]} is not finite (NaN or out of float range)") \
            from None
    except json.JSONDecodeError as e:
        raise JSONSyntaxError(f"{where}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except (ValueError, RecursionError) as e:      # ValueError: an integer past Python's 4300-digit conversion limit
        raise JSONError(f"{where}: refused, a value cannot be read ({str(e)[:80]})") from None

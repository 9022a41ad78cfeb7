"""YAML from untrusted files and command lines, bounded before it is built and refused in one line.

Why: ``yaml.safe_load`` runs no code, but an alias bomb (each list holding ten aliases of the previous one)
is a few hundred bytes that expand into billions of values once printed, copied or dumped; a 2.1 GB error
message came from one key. Here the composed node graph is measured with every alias expanded (shared
nodes counted once per use, without building anything) and refused past ``MAX_EXPANDED``; every parse
error becomes one short line naming the line and column.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, one_line
from .bounded_read import read_regular

MAX_FILE_BYTES = 1 << 20        # a training config is a few KB
MAX_EXPANDED = 1_000_000        # nodes plus scalar characters, every alias expanded
_MESSAGE = 160                  # longest quoted parser message


class YAMLLimitError(ConfigError):
    """YAML refused for its size, its alias expansion or its nesting (not for its syntax)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that measures the expanded document before constructing any Python object."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node, self.name)
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node, where: str) -> None:
    """Size of the document with aliases expanded (iterative, memoized: linear in the file, no recursion)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            open_nodes.discard(key)
            own = 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)
            sizes[key] = own + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_EXPANDED:
                raise YAMLLimitError(f"{where}: refused, its aliases expand past {MAX_EXPANDED:,} values "
                                     f"(an alias bomb?); a config needs no such repetition")
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YAMLLimitError(f"{where}: refused, an alias refers to a node that contains it (endless nesting)")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _describe(e: yaml.YAMLError) -> str:
    """The parser's complaint as one short line, with the line and column where it was found."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        return one_line(f"{where}{e.problem}", _MESSAGE)
    if isinstance(e, yaml.reader.ReaderError):
        return one_line(f"position {e.position}: {e.reason}", _MESSAGE)
    return one_line(str(e).split("\n", 1)[0], _MESSAGE)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse one YAML document safely; ConfigError (one line, naming ``where``) on anything wrong."""
    if len(text) > MAX_FILE_BYTES:
        raise YAMLLimitError(f"{where}: refused, {len(text):,} characters is more than a config holds "
                             f"(limit {MAX_FILE_BYTES:,})")
    loader = None
    try:
        loader = _BoundedLoader(text)       # the reader checks every character here already
        loader.name = where
        return loader.get_single_data()
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({_describe(e)})") from None
    except RecursionError:
        raise YAMLLimitError(f"{where}: refused, nested too deeply") from None
    except (ValueError, OverflowError) as e:   # e.g. a 5000-digit integer or a 13th month in a date
        raise ConfigError(f"{where}: not valid YAML (a value cannot be read: {one_line(e, _MESSAGE)})") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(path: str | Path) -> Any:
    """Read a YAML file (UTF-8 text, at most MAX_FILE_BYTES) with ``load_yaml_text``."""
    p = Path(path)
    data = read_regular(p, MAX_FILE_BYTES, "config", ConfigError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a text file (invalid UTF-8 at byte {e.start}); a config is YAML text") from None
    return load_yaml_text(text, str(p))

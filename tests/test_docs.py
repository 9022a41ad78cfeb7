"""The README and docs/ cannot rot: links resolve, commands in them parse, and docs/cli.md matches the parsers."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from core.cli import build_parser
from core.cli_doc import cli_markdown
from core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text without fenced blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            slug = _slug(m.group(1))
            anchors.add(f"{slug}-{seen[slug]}" if slug in seen else slug)
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _links() -> list[tuple[Path, str]]:
    return [(doc, target) for doc in DOCS for target in LINK.findall(_prose(doc.read_text()))
            if not re.match(r"[a-z]+:", target)]


def _command_lines() -> list[tuple[Path, str]]:
    """Every `main.py ...` command: lines of fenced blocks (continuations joined), and inline examples."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in FENCE.findall(text):
            for line in block.replace("\\\n", " ").splitlines():
                if "main.py" in line:
                    found.append((doc, line))
        found += [(doc, code) for code in INLINE_CODE.findall(text) if code.startswith("main.py ")]
    return found


def _id(value: object) -> str:
    return value.name if isinstance(value, Path) else str(value)[:70]


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize("doc,target", _links(), ids=_id)
def test_relative_links_resolve(doc: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    dest = (doc.parent / path).resolve() if path else doc
    assert dest.exists(), f"{doc.name}: link to missing {target}"
    if anchor:
        assert anchor in _anchors(dest), f"{doc.name}: no heading #{anchor} in {dest.name}"


@pytest.mark.parametrize("doc,line", _command_lines(), ids=_id)
def test_commands_parse(parser, doc: Path, line: str) -> None:
    tokens = shlex.split(line, comments=True)
    assert "|" not in tokens and not any(t.startswith(("[", "<")) for t in tokens), \
        f"{doc.name}: not a command one can paste: {line}"
    args = tokens[next(i for i, t in enumerate(tokens) if t.endswith("main.py")) + 1:]
    try:
        parser.parse_args(args)
    except UserError as e:
        pytest.fail(f"{doc.name}: {line!r} does not parse: {e}")


def test_there_are_commands_and_links() -> None:
    assert len(_command_lines()) >= 15 and len(_links()) >= 30


def test_cli_reference_is_generated_from_the_parsers() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == cli_markdown(), \
        "docs/cli.md is stale: .venv/bin/python -m core.cli_doc > docs/cli.md"


def test_readme_keeps_the_install_and_test_commands_ci_runs() -> None:
    blocks = [block.strip() for block in FENCE.findall((ROOT / "README.md").read_text())]
    assert ".venv/bin/python -m pytest -q" in blocks
    assert 'python3 -m venv .venv && .venv/bin/python -m pip install torch==2.13.0 -e ".[weights,test]" && ' \
           ".venv/bin/python main.py" in blocks

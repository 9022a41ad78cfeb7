"""The command reference (docs/cli.md) written from the argparse parsers, so it cannot drift from the code.

Regenerate after changing an option: ``.venv/bin/python -m core.cli_doc > docs/cli.md``;
``tests/test_docs.py`` fails while the committed file differs from what this prints.
"""
from __future__ import annotations

import argparse
import sys

from .cli import build_parser

USAGE_WIDTH = 100          # fixed, so the text does not depend on the terminal it was made in

HEADER = """# Command line reference

Generated from the parsers by `.venv/bin/python -m core.cli_doc > docs/cli.md`; do not edit by hand.
Run any command as `.venv/bin/python main.py COMMAND ...` (or `ssl-vsr COMMAND ...` once installed); every
command has `--help`. Exit codes: 0 done, 2 refused input (one `error:` line, nothing written), 1 a failure
that is not the input's fault (see [Troubleshooting](../README.md#troubleshooting)), 130 interrupted.
"""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each sub-command, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None:
        return " | ".join(str(c) for c in action.choices)
    metavar = action.metavar or action.dest.upper()
    return f"{metavar} [{metavar} ...]" if action.nargs in ("+", "*") else str(metavar)


def _default(action: argparse.Action) -> str:
    value = action.default
    if action.nargs == 0 or action.required or value is None or value is False or value == [] \
            or value is argparse.SUPPRESS:
        return ""
    if isinstance(value, tuple):        # a size: (height, width)
        value = "x".join(str(v) for v in value)
    return f"`{value}`"


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
        value = _value(action) if action.option_strings else ""
        meaning = "; ".join(filter(None, ["required" if action.required and action.option_strings else "",
                                          action.help or ""]))
        rows.append(f"| {name} | {_cell(value)} | {_default(action)} | {_cell(meaning)} |")
    if not rows:
        return []
    return ["| argument | value | default | meaning |", "|---|---|---|---|", *rows, ""]


def _section(name: str, help_: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} {name}", "", _cell(help_), "", "```", _usage(parser), "```", ""]
    lines += _options_table(parser)
    for sub_name, sub_help, sub in _subcommands(parser):
        lines += _section(f"{name} {sub_name}", sub_help, sub, level + 1)
    return lines


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    """docs/cli.md: a summary table of the commands, then each command's usage and every option."""
    parser = parser or build_parser()
    commands = _subcommands(parser)
    lines = [HEADER, "| command | what it does |", "|---|---|"]
    lines += [f"| [`{name}`](#{name}) | {_cell(help_)} |" for name, help_, _ in commands]
    lines.append("")
    for name, help_, sub in commands:
        lines += _section(name, help_, sub, 2)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(cli_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The CLI reference page, generated from moodlens's own argparse parser.

Used by the docs build (tools/mkdocs_hooks.py); run it alone to print the page:
``python tools/cli_reference.py > cli.md``.
"""

from __future__ import annotations

import argparse
import os


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_text(parser: argparse.ArgumentParser) -> str:
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"  # the same wrapping on every machine
    try:
        return parser.format_help().rstrip()
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _cli_notes() -> list[str]:
    """What moodlens/cli.py's docstring says after its first line (the exit codes)."""
    import inspect

    import moodlens.cli

    doc = inspect.cleandoc(moodlens.cli.__doc__ or "")
    return doc.split("\n\n", 1)[1].splitlines() if "\n\n" in doc else []


def cli_reference_markdown() -> str:
    from moodlens.cli import build_parser

    parser = build_parser()
    commands = _subcommands(parser)
    summaries = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
    lines = [
        "# Command line reference",
        "",
        "Generated from the argparse parser of `moodlens` itself (`moodlens.cli.build_parser`) each time",
        "the site is built, so it always matches the installed command: the text below is what",
        "`moodlens COMMAND --help` prints.",
        "",
        *_cli_notes(),
        "",
        "| command | what it does |",
        "|---|---|",
    ]
    lines += [f"| [`moodlens {name}`](#moodlens-{name}) | {summaries.get(name, '')} |" for name in commands]
    lines += ["", "## moodlens", "", "```text", _help_text(parser), "```", ""]
    for name, sub in commands.items():
        lines += [f"## moodlens {name}", "", "```text", _help_text(sub), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(cli_reference_markdown())

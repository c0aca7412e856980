"""A griffe extension for the API reference: moodlens's docstrings are written for people
reading the source (a few reST roles, bare ``>>>`` examples, ``<array>`` placeholders); this
turns those into Markdown when the site is built, without touching the source.

* ``:func:`read_wave``` (any reST role) -> a code span ``read_wave``;
* a run of ``>>>`` lines -> a fenced ``pycon`` block;
* ``<name>`` outside code -> a code span, so Markdown does not swallow it as an HTML tag.

Loaded by mkdocstrings (``extensions:`` in mkdocs.yml).
"""

from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj|py:\w+):`~?([^`]+)`")
PLACEHOLDER = re.compile(r"(?<![`\w])<([A-Za-z_][\w .-]*)>(?![`\w])")
CODE = re.compile(r"(```.*?```|``[^`]+``|`[^`]+`)", re.S)


def _outside_code(text: str, fix) -> str:
    parts = CODE.split(text)
    return "".join(p if i % 2 else fix(p) for i, p in enumerate(parts))


def _fence_doctests(text: str) -> str:
    out, block = [], []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith(">>>") or (block and stripped.startswith("...")):
            block.append(stripped)
            continue
        if block:
            out += ["```pycon", *block, "```"]
            block = []
        out.append(line)
    return "\n".join(out[:-1])


def markdown_docstring(text: str) -> str:
    text = ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    if ">>>" in text and "```" not in text:
        text = _fence_doctests(text)
    return _outside_code(text, lambda p: PLACEHOLDER.sub(lambda m: f"`<{m.group(1)}>`", p))


class MarkdownDocstrings(griffe.Extension):
    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)

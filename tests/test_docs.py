"""The notebooks and the docs site's generated pages (the site itself is built by
`mkdocs build --strict` in .ci/run; the notebooks are executed by tools/run_notebooks.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_three_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["01_data.ipynb", "02_train_evaluate.ipynb", "03_photos_video_voice.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs: strip them (nbstripout)"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_find_the_shared_data_like_the_tests(path):
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "MOODLENS_SHARED_DATA" in code and '"shared" / "data"' in code


def test_cli_reference_has_every_command():
    from moodlens.cli import build_parser

    page = _load("cli_reference").cli_reference_markdown()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    assert len(commands) >= 10
    for name, sub in commands.items():
        assert f"## moodlens {name}\n" in page
        assert "usage: " + " ".join(sub.format_usage().split()[1:3]) in page  # its --help made it in
    assert "Exit codes" in page  # from moodlens/cli.py's docstring


def test_docs_hook_renders_an_executed_notebook_only_when_its_code_matches(tmp_path, monkeypatch):
    pytest.importorskip("mkdocs")
    hooks = _load("mkdocs_hooks")
    nb = {"cells": [{"cell_type": "code", "source": ["x = 1"], "outputs": [], "metadata": {}}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    src = tmp_path / "a.ipynb"
    src.write_text(json.dumps(nb))
    executed_dir = tmp_path / "executed"
    executed_dir.mkdir()
    monkeypatch.setattr(hooks, "EXECUTED", executed_dir)
    assert hooks.notebook_source(src) == (src, False)  # not executed yet
    nb["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
    (executed_dir / "a.ipynb").write_text(json.dumps(nb))
    assert hooks.notebook_source(src) == (executed_dir / "a.ipynb", True)
    nb["cells"][0]["source"] = ["x = 2"]  # the notebook changed since it was executed
    src.write_text(json.dumps(nb))
    assert hooks.notebook_source(src) == (src, False)


def test_api_reference_turns_source_docstrings_into_markdown():
    pytest.importorskip("griffe")
    fix = _load("griffe_docstrings").markdown_docstring
    assert fix("Uses :func:`read_wave` and :class:`~moodlens.FaceData`.") == "Uses `read_wave` and `moodlens.FaceData`."
    assert fix('(default "<array>")') == '(default "`<array>`")'
    assert fix("kept ``<x>`` and `<y>`") == "kept ``<x>`` and `<y>`"
    assert fix("Example.\n\n>>> a = 1\n>>> a\n\nAfter.") == "Example.\n\n```pycon\n>>> a = 1\n>>> a\n```\n\nAfter."

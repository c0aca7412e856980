"""MkDocs hooks for the moodlens site (``hooks:`` in mkdocs.yml).

Nothing here is written twice: at build time this adds to the site

* ``reference/cli.md``: every ``moodlens`` command's ``--help``, generated from the
  argparse parser the command line itself uses (``moodlens.cli.build_parser``);
* ``models/<card>.md``: the model cards shipped beside the weights
  (``src/moodlens/weights/*.md``), read as they are;
* ``notebooks/<name>.ipynb``: the notebooks of ``notebooks/``, rendered by mkdocs-jupyter.
  When ``tools/run_notebooks.py`` has executed them into ``build/notebooks/`` (as CI does)
  and the executed copy has the same code as the notebook, that copy, with its outputs,
  is rendered; otherwise the committed notebook without outputs.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from mkdocs.plugins import CombinedEvent, event_priority
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from cli_reference import cli_reference_markdown  # noqa: E402

log = logging.getLogger("mkdocs.hooks.moodlens")
NOTEBOOKS = ROOT / "notebooks"
EXECUTED = ROOT / "build" / "notebooks"
CARDS = ROOT / "src" / "moodlens" / "weights"


def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


def notebook_source(path: Path) -> tuple[Path, bool]:
    """The file to render for a notebook, and whether it carries outputs."""
    executed = EXECUTED / path.name
    if executed.is_file() and _code_cells(executed) == _code_cells(path):
        return executed, True
    if executed.is_file():
        log.info("%s differs from %s: rendering the notebook without outputs "
                 "(run tools/run_notebooks.py again)", executed, path)
    return path, False


@event_priority(100)  # before mkdocs-jupyter's on_files, which wraps the .ipynb files
def _add_generated_files(files: Files, config) -> Files:
    files.append(File.generated(config, "reference/cli.md", content=cli_reference_markdown()))
    for card in sorted(CARDS.glob("*.md")):
        files.append(File.generated(config, f"models/{card.name}", abs_src_path=str(card)))
    for nb in sorted(NOTEBOOKS.glob("*.ipynb")):
        source, executed = notebook_source(nb)
        log.info("notebook %s: %s", nb.name, "executed copy with outputs" if executed else "without outputs")
        files.append(File.generated(config, f"notebooks/{nb.name}", abs_src_path=str(source)))
    return files


@event_priority(-100)  # after mkdocs-jupyter's on_files
def _fix_notebook_paths(files: Files, config) -> Files:
    """mkdocs-jupyter wraps each notebook in a NotebookFile that recomputes ``abs_src_path``
    from ``src_dir``, which a generated file does not have; give the wrapper the path."""
    for f in files:
        inner = getattr(f, "file", None)
        if isinstance(inner, File) and inner is not f and f.src_uri.endswith(".ipynb"):
            f.__dict__["abs_src_path"] = inner.abs_src_path
    return files


on_files = CombinedEvent(_add_generated_files, _fix_notebook_paths)

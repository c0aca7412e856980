"""Execute the notebooks of notebooks/ (what CI does), one at a time.

    python tools/run_notebooks.py [NOTEBOOK ...] [--out build/notebooks] [--timeout 900]

Each notebook runs in a fresh kernel with notebooks/ as its working directory, exactly
as committed (without outputs). The executed copy, with its outputs, is written to
``--out``, where the docs build (tools/mkdocs_hooks.py) renders it from. A cell that
raises fails the notebook; the script then exits 1 after running the others, printing
the failing cell's error. The committed notebooks are never modified.

The shared data is found at ../shared/data beside the repository, or at
$MOODLENS_SHARED_DATA.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, out_dir: Path, timeout: int) -> tuple[bool, float]:
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.time()
    ok = True
    try:
        client.execute()
    except CellExecutionError as exc:
        ok = False
        print(f"FAILED {path.name}:\n{exc}", file=sys.stderr)
    seconds = time.time() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out_dir / path.name))
    return ok, seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/*.ipynb")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "notebooks", help="executed copies go here")
    ap.add_argument("--timeout", type=int, default=900, help="seconds one cell may take (default: %(default)s)")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    passed = failed = 0
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        ok, seconds = run(path.resolve(), args.out, args.timeout)
        print(f"{'passed' if ok else 'FAILED'} {path.name} in {seconds:.0f} s", flush=True)
        passed, failed = passed + ok, failed + (not ok)
    print(f"notebooks: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

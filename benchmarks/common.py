"""Helpers shared by the benchmark scripts (paths to the shared data, tables)."""

from __future__ import annotations

import csv
import os
import statistics
import time
from pathlib import Path

from moodlens.results import Box

SHARED = Path(os.environ.get("MOODLENS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MEDIA = SHARED / "media"
FER_CSV = SHARED / "fer2013" / "fer2013.csv.gz"


def require_shared(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"{path} is missing: benchmarks read the shared data (set MOODLENS_SHARED_DATA)")
    return path


def annotated_boxes() -> dict[str, list[Box]]:
    """face_boxes.csv: file -> annotated boxes."""
    boxes: dict[str, list[Box]] = {}
    with open(require_shared(MEDIA / "face_boxes.csv"), newline="") as fh:
        for row in csv.DictReader(fh):
            boxes.setdefault(row["file"], []).append(
                Box(int(row["left"]), int(row["top"]), int(row["width"]), int(row["height"])))
    return boxes


def iou(a: Box, b: Box) -> float:
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    return inter / (a.w * a.h + b.w * b.h - inter)


def match(found: list[Box], truth: list[Box], threshold: float = 0.4) -> int:
    """Greedy one-to-one matches with IoU >= threshold."""
    pairs = sorted(((iou(f, t), i, j) for i, f in enumerate(found) for j, t in enumerate(truth)), reverse=True)
    used_f, used_t, hits = set(), set(), 0
    for score, i, j in pairs:
        if score < threshold:
            break
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            hits += 1
    return hits


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain Markdown table."""
    columns = columns or list(rows[0])
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"
    return "\n".join([line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def median_ms(fn, repeats: int = 50, warmup: int = 10) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)

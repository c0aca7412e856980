"""Output writers keyed by format: a readable table, JSON lines, CSV, and
annotated images. Each writes one input file's results at a time, so a long
batch streams its output."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from .io import atomic_path
from .results import ImageResult


class TableWriter:
    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def write(self, r: ImageResult) -> None:
        if r.error:
            self.out.write(f"{r.source}: ERROR {r.error}\n")
        elif not r.faces:
            self.out.write(f"{r.source}: no face found\n")
        else:
            self.out.write(f"{r.source}: {len(r.faces)} face{'s' if len(r.faces) > 1 else ''}\n")
            for i, f in enumerate(r.faces):
                box = "whole image" if f.box is None else "x={} y={} w={} h={}".format(*f.box.to_list())
                top = sorted(f.scores.items(), key=lambda kv: -kv[1])[1:3]
                others = ", ".join(f"{k} {v:.2f}" for k, v in top)
                self.out.write(f"  face {i}  {box:<26} {f.label:<9} {f.score:.2f}   ({others})\n")
        self.out.flush()

    def close(self) -> None:
        pass


class JsonLinesWriter:
    """One JSON object per face; files without faces or with errors get one line too."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout

    def write(self, r: ImageResult) -> None:
        if r.error or not r.faces:
            line = {"source": r.source, "face": None, "error": r.error, "status": "error" if r.error else "no_face"}
            self.out.write(json.dumps(line) + "\n")
        for i, f in enumerate(r.faces):
            self.out.write(json.dumps({**f.to_dict(), "face": i, "status": "ok"}) + "\n")
        self.out.flush()

    def close(self) -> None:
        pass


class CsvWriter:
    def __init__(self, out: TextIO | None = None, labels: tuple[str, ...] = ()):
        out = out or sys.stdout
        self.labels = labels
        self.w = csv.writer(out, lineterminator="\n")
        self.w.writerow(["source", "face", "status", "x", "y", "w", "h", "label", "score", *labels, "error"])
        self.out = out

    def write(self, r: ImageResult) -> None:
        if r.error or not r.faces:
            status = "error" if r.error else "no_face"
            self.w.writerow([r.source, "", status, "", "", "", "", "", "", *[""] * len(self.labels), r.error or ""])
        for i, f in enumerate(r.faces):
            box = f.box.to_list() if f.box else ["", "", "", ""]
            self.w.writerow([r.source, i, "ok", *box, f.label, f"{f.score:.4f}",
                             *[f"{f.scores.get(l, 0.0):.4f}" for l in self.labels], ""])
        self.out.flush()

    def close(self) -> None:
        pass


WRITERS = {"table": TableWriter, "json": JsonLinesWriter, "csv": CsvWriter}


def make_writer(fmt: str, labels: tuple[str, ...], out: TextIO | None = None):
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(WRITERS)}")
    return CsvWriter(out, labels) if fmt == "csv" else WRITERS[fmt](out)


# Colours (BGR) per emotion for boxes and labels.
COLOURS = {
    "angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (160, 60, 160), "happy": (30, 200, 255),
    "sad": (200, 120, 40), "surprise": (0, 160, 255), "neutral": (200, 200, 200), "contempt": (90, 90, 160),
}


def draw_faces(image: np.ndarray, faces, label_fn=None) -> np.ndarray:
    """Boxes with "label score" tags, sized to the image. Returns a copy."""
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 400))
    font = 0.4 + 0.25 * thick
    for f in faces:
        if f.box is None:
            continue
        x, y, w, h = f.box.to_list()
        colour = COLOURS.get(f.label, (0, 255, 0))
        text = label_fn(f) if label_fn else f"{f.label} {f.score:.2f}"
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, thick)
        ty = y - 4 if y - th - 8 >= 0 else y + h + th + 4
        cv2.rectangle(out, (x, ty - th - 4), (x + tw + 4, ty + base - 2), colour, -1)
        cv2.putText(out, text, (x + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick, cv2.LINE_AA)
    return out


def _hex_to_bgr(value, fallback: tuple[int, int, int]) -> tuple[int, int, int]:
    try:
        v = str(value).lstrip("#")
        return int(v[4:6], 16), int(v[2:4], 16), int(v[0:2], 16)
    except (ValueError, IndexError):
        return fallback


def with_content_panel(image: np.ndarray, choice, width: int = 300) -> np.ndarray:
    """The frame with a panel on its right showing the content choice (kind,
    title, why), coloured by the item's theme when it has one."""
    import textwrap

    h = image.shape[0]
    theme = choice.item.get("theme") if isinstance(choice.item.get("theme"), dict) else {}
    panel = np.empty((h, width, 3), np.uint8)
    panel[:] = _hex_to_bgr(theme.get("background"), (245, 245, 245))
    accent = _hex_to_bgr(theme.get("accent"), (80, 80, 80))
    cv2.rectangle(panel, (0, 0), (5, h), accent, -1)
    y = 30
    for text, scale, colour, weight in [(str(choice.item.get("kind", "")).upper(), 0.45, accent, 1),
                                        *[(line, 0.6, (20, 20, 20), 2) for line in
                                          textwrap.wrap(choice.item["title"], 22)],
                                        *[(line, 0.45, (60, 60, 60), 1) for line in
                                          textwrap.wrap(str(choice.item.get("body", "")), 32)]]:
        cv2.putText(panel, text, (16, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, weight, cv2.LINE_AA)
        y += int(36 * scale) + 6
    why = f"mood {choice.mood} {choice.score:.2f}" if choice.mood else "default item"
    cv2.putText(panel, why, (16, h - 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    return np.hstack([image, panel])


def save_image(path: Path, image: np.ndarray) -> None:
    """Encode by the file's suffix and write atomically."""
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise ValueError(f"{path}: cannot encode image as {path.suffix}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())

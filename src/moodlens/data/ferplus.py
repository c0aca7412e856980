"""FER+ relabelling of FER-2013 (``fer2013new.csv``).

About the dataset
-----------------
FER+ (Barsoum et al., ICMI 2016; github microsoft/FERPlus, MIT licence) gives each
FER-2013 image 10 crowd votes over neutral, happiness, surprise, sadness, anger,
disgust, fear, contempt, unknown and NF (not a face). Rows align one to one with
``fer2013.csv``; the pixels come from there. As in the paper's majority mode, a
row whose top vote is ``unknown`` or ``NF`` (or a tie for the top emotion) is
dropped; the soft label is the vote distribution over the eight emotions.
Column names map to canonical labels through :data:`moodlens.labels.FERPLUS_COLUMNS`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import FERPLUS_COLUMNS
from .facedata import FaceData
from .fer2013 import load_fer2013

VOTE_COLUMNS = tuple(FERPLUS_COLUMNS)  # the ten vote columns, file order
EMOTION_COLUMNS = tuple(c for c, label in FERPLUS_COLUMNS.items() if label is not None)
FERPLUS_LABELS = tuple(FERPLUS_COLUMNS[c] for c in EMOTION_COLUMNS)


def read_ferplus_votes(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Return (votes (N, 10) int, usage (N,) str) from ``fer2013new.csv``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("Usage", *VOTE_COLUMNS) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing FER+ column(s) {', '.join(missing)}")
        votes, usage = [], []
        for line_no, row in enumerate(reader, start=2):
            try:
                votes.append([int(row[c]) for c in VOTE_COLUMNS])
            except (TypeError, ValueError):
                raise DataError(f"{path}, line {line_no}: vote counts must be integers") from None
            usage.append(row["Usage"])
    return np.asarray(votes, dtype=np.int64), np.asarray(usage)


def load_ferplus(fer_csv: str | Path, ferplus_csv: str | Path) -> FaceData:
    """FER-2013 pixels with FER+ majority labels and soft label distributions."""
    pixels = load_fer2013(fer_csv)
    votes, usage = read_ferplus_votes(ferplus_csv)
    if len(votes) != len(pixels):
        raise DataError(
            f"{ferplus_csv}: {len(votes)} rows but {fer_csv} has {len(pixels)}; the files must align row for row"
        )
    if not np.array_equal(usage, pixels.usage):
        raise DataError(f"{ferplus_csv}: Usage column differs from {fer_csv}; the files do not align")
    emotion_votes = votes[:, : len(EMOTION_COLUMNS)]
    top = votes.argmax(axis=1)
    top_count = emotion_votes.max(axis=1)
    ties = (emotion_votes == top_count[:, None]).sum(axis=1) > 1
    keep = (top < len(EMOTION_COLUMNS)) & ~ties & (top_count > 0)
    soft = emotion_votes / np.maximum(emotion_votes.sum(axis=1, keepdims=True), 1)
    data = FaceData(
        images=pixels.images,
        labels=top,
        label_names=FERPLUS_LABELS,
        usage=pixels.usage,
        soft=soft.astype(np.float32),
        source=f"{fer_csv} + {ferplus_csv}",
    )
    return data.subset(keep)

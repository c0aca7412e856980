"""FER-2013 in the original Kaggle CSV layout.

About the dataset
-----------------
FER-2013 ("Challenges in Representation Learning: Facial Expression Recognition
Challenge", ICML 2013 workshop; Goodfellow et al., arXiv:1307.0414) holds 35,887
48x48 grayscale faces: Training 28,709, PublicTest 3,589, PrivateTest 3,589.
Users download ``fer2013.csv`` from Kaggle (research use; no explicit licence).
Header ``emotion,pixels,Usage``; ``pixels`` is 2304 space-separated 0-255 values,
row-major; ``emotion`` codes 0..6 = angry, disgust, fear, happy, sad, surprise,
neutral (see :data:`moodlens.labels.FER2013_CODES`).
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import FER_EMOTIONS
from .facedata import FACE_SIZE, FaceData

REQUIRED_COLUMNS = ("emotion", "pixels")
PIXELS_PER_FACE = FACE_SIZE * FACE_SIZE  # 2304
# Published per-split sizes of the full release; a file with all rows of a split
# is checked against them (the shared copy lacks PrivateTest, which is fine).
SPLIT_SIZES = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_fer2013(path: str | Path, usage: str | list[str] | None = None) -> FaceData:
    """Read a FER-2013 CSV (plain or .gz). ``usage`` keeps only those splits.

    A file without the ``emotion``/``pixels`` columns, a pixel field that is not
    2304 integers in 0..255, or an unknown emotion code raises :class:`DataError`
    naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    wanted = None if usage is None else ({usage} if isinstance(usage, str) else set(usage))
    images, labels, usages = [], [], []
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file")
            header = [h.strip() for h in header]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(header)}; "
                    "expected the Kaggle layout emotion,pixels,Usage"
                )
            i_emo, i_pix = header.index("emotion"), header.index("pixels")
            i_use = header.index("Usage") if "Usage" in header else None
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}, line {line_no}: {len(row)} fields, expected {len(header)}")
                split = row[i_use].strip() if i_use is not None else "Training"
                if wanted is not None and split not in wanted:
                    continue
                images.append(_parse_pixels(row[i_pix], path, line_no))
                labels.append(_parse_code(row[i_emo], path, line_no))
                usages.append(split)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read as a FER-2013 CSV ({exc})") from exc
    if not images:
        raise DataError(f"{path}: no data rows" + (f" with usage {sorted(wanted)}" if wanted else ""))
    data = FaceData(
        images=np.stack(images).reshape(-1, FACE_SIZE, FACE_SIZE),
        labels=np.asarray(labels, dtype=np.int64),
        label_names=FER_EMOTIONS,
        usage=np.asarray(usages),
        source=str(path),
    )
    _check_split_sizes(data)
    return data


def _parse_pixels(field: str, path: Path, line_no: int) -> np.ndarray:
    try:
        values = np.array(field.split(), dtype=np.int32)
    except ValueError:
        raise DataError(f"{path}, line {line_no}: pixels field holds a non-integer value") from None
    if values.size != PIXELS_PER_FACE:
        raise DataError(
            f"{path}, line {line_no}: pixels field has {values.size} values, expected {PIXELS_PER_FACE} (48x48)"
        )
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{path}, line {line_no}: pixel values must lie in 0..255")
    return values.astype(np.uint8)


def _parse_code(field: str, path: Path, line_no: int) -> int:
    try:
        code = int(field)
    except ValueError:
        raise DataError(f"{path}, line {line_no}: emotion {field!r} is not an integer code") from None
    if not 0 <= code < len(FER_EMOTIONS):
        raise DataError(f"{path}, line {line_no}: emotion code {code} outside 0..{len(FER_EMOTIONS) - 1}")
    return code


def _check_split_sizes(data: FaceData) -> None:
    """Warn-free sanity check: a split larger than the release means a wrong file."""
    for split, expected in SPLIT_SIZES.items():
        n = int((data.usage == split).sum())
        if n > expected:
            raise DataError(f"{data.source}: {n} {split} rows, but FER-2013 has {expected}")

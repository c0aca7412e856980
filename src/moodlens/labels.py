"""The canonical emotion vocabulary and each corpus's code -> label map.

Every model and every data recipe speaks these names. A corpus code that has no
canonical counterpart maps to ``None`` and is dropped by the recipe, with the
reason documented next to the map. Stdlib only: imported by everything.
"""

from __future__ import annotations

# The seven basic classes, in FER-2013's code order (0..6). The face models
# predict exactly these, in this order.
FER_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Labels some corpora add to the basic seven. Models that predict them list them
# in their metadata; fusion aligns distributions by name, not by index.
EXTRA_EMOTIONS: tuple[str, ...] = ("contempt", "calm", "boredom")

CANONICAL: tuple[str, ...] = FER_EMOTIONS + EXTRA_EMOTIONS

# FER-2013 "emotion" column.
FER2013_CODES: dict[int, str] = dict(enumerate(FER_EMOTIONS))

# FER+ vote columns (fer2013new.csv). "unknown" and "NF" (not a face) are not
# emotions: rows whose majority is one of them are dropped, as the FER+ paper does.
FERPLUS_COLUMNS: dict[str, str | None] = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "contempt": "contempt",
    "unknown": None,
    "NF": None,
}

# CK+48 folder names (the common Kaggle "CK+48" layout).
CKPLUS_FOLDERS: dict[str, str] = {
    "anger": "angry",
    "contempt": "contempt",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}

# Folder names users have for the FER-2013 image-folder variant (msambare and
# friends). Matching is case-insensitive.
FOLDER_ALIASES: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "contempt": "contempt",
}


def index_of(label: str, labels: tuple[str, ...] = FER_EMOTIONS) -> int:
    """Position of ``label`` in ``labels``; a clear error for an unknown name."""
    try:
        return labels.index(label)
    except ValueError:
        raise ValueError(f"unknown emotion {label!r}; expected one of {', '.join(labels)}") from None

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


# --- speech corpora ------------------------------------------------------------
# Speech models predict VOICE_EMOTIONS: the basic seven plus RAVDESS's "calm",
# in FER order so the shared labels line up with the face models by position too.
VOICE_EMOTIONS: tuple[str, ...] = FER_EMOTIONS + ("calm",)

# RAVDESS, third field of 03-01-EE-II-SS-RR-AA. "calm" (02) is a low-arousal
# state distinct from neutral in the corpus design: kept as the canonical
# "calm" label, never merged into neutral. Song files (vocal channel 02) have
# only 01-06.
RAVDESS_CODES: dict[str, str] = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fear",
    "07": "disgust",
    "08": "surprise",
}

# CREMA-D, third field of 1001_DFA_ANG_XX (six emotions, no surprise or calm).
CREMAD_CODES: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}

# TESS, last part of OAF_back_angry (and of the folder OAF_angry). Matching is
# case-insensitive. TESS's "pleasant surprise" ("ps" in file names) is its only
# surprise class: it maps to "surprise", a documented narrowing (the valence is
# always positive in TESS, never in the face corpora's surprise).
TESS_WORDS: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "happy": "happy",
    "happiness": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "ps": "surprise",
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
    "surprise": "surprise",
    "surprised": "surprise",
}

# SAVEE, letters of DC_a01 / DC/a01 ("sa" and "su" before the one-letter codes).
SAVEE_CODES: dict[str, str] = {
    "a": "angry",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprise",
}

# EMO-DB, sixth character of 03a01Fa (German initials). "boredom" (L,
# Langeweile) is kept as the canonical "boredom" label; a model that does not
# predict it (the default voice model) drops those clips when training and
# evaluating, unless a recipe maps it explicitly (data.relabel).
EMODB_CODES: dict[str, str] = {
    "W": "angry",  # Wut / Ärger
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}

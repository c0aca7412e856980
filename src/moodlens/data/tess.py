"""TESS.

About the dataset
-----------------
The Toronto Emotional Speech Set (Dupuis & Pichora-Fuller 2010, University of
Toronto): two actresses, aged 64 (OAF) and 26 (YAF), say 200 target words in
the carrier phrase "Say the word _" in seven emotions: 2,800 files. Users get
it from the University of Toronto Dataverse (doi:10.5683/SP2/E8H2MF) or Kaggle;
licence CC BY-NC-ND 4.0.

Layout: ``OAF_angry/OAF_back_angry.wav``: speaker, word, emotion
(labels.TESS_WORDS). Odd names in the distributed copies, all handled: "ps"
for pleasant surprise (folders OAF_Pleasant_surprise, YAF_pleasant_surprised),
capitalised folders (OAF_Fear, OAF_Sad), and a few files with a truncated
speaker prefix such as ``OA_bite_neutral.wav``. When the file name carries no
readable emotion, the folder name's is used. Only two speakers exist, so a
speaker-independent split trains on one and tests on the other.
"""

from __future__ import annotations

from pathlib import Path

from ..labels import TESS_WORDS
from .speech import SpeechItem, scan

SPEAKERS = {"oaf": "OAF", "oa": "OAF", "yaf": "YAF", "ya": "YAF"}
EXPECTED = "OAF_angry/OAF_back_angry.wav (speaker OAF/YAF, word, emotion)"


def _emotion(parts: list[str]) -> str | None:
    """Canonical label from the tail of name parts: "ps", "pleasant_surprised", ..."""
    for n in (2, 1):
        if len(parts) >= n and "_".join(parts[-n:]) in TESS_WORDS:
            return TESS_WORDS["_".join(parts[-n:])]
    return None


def parse_tess(path: Path) -> SpeechItem | None:
    parts = path.stem.lower().replace("-", "_").replace(" ", "_").split("_")
    speaker = SPEAKERS.get(parts[0])
    folder = path.parent.name.lower().replace("-", "_").replace(" ", "_").split("_")
    if speaker is None:
        return None
    label = _emotion(parts[1:]) if len(parts) >= 3 else None
    if label is None and SPEAKERS.get(folder[0]) == speaker:
        label = _emotion(folder[1:])
    if label is None:
        return None
    return SpeechItem(path=path, label=label, speaker=speaker, corpus="tess",
                      info={"word": parts[1] if len(parts) >= 3 else ""})


def load_tess(root: str | Path) -> list[SpeechItem]:
    """Every TESS clip under ``root``."""
    return scan(root, "TESS", parse_tess, EXPECTED)

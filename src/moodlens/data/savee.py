"""SAVEE.

About the dataset
-----------------
Surrey Audio-Visual Expressed Emotion (Haq & Jackson 2009/2010, University of
Surrey): 480 British English utterances from four male speakers (DC, JE, JK,
KL), 120 each: 15 per emotion and 30 neutral. Users register at
kahlan.eps.surrey.ac.uk/savee and download it free for research; no open
licence (do not redistribute). Kaggle copies exist.

Layouts, both read: the original ``AudioData/DC/a01.wav`` (speaker = folder)
and the flat Kaggle ``ALL/DC_a01.wav``. Codes (labels.SAVEE_CODES): a anger,
d disgust, f fear, h happiness, n neutral, sa sadness, su surprise, then a
two-digit take number.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..labels import SAVEE_CODES
from .speech import SpeechItem, scan

FLAT = re.compile(r"^([A-Za-z]{2})_(sa|su|a|d|f|h|n)(\d{2})$")
ORIGINAL = re.compile(r"^(sa|su|a|d|f|h|n)(\d{2})$")
SPEAKER = re.compile(r"^[A-Za-z]{2}$")
EXPECTED = "DC_a01.wav (flat) or DC/a01.wav (original layout)"


def parse_savee(path: Path) -> SpeechItem | None:
    m = FLAT.match(path.stem)
    if m is not None:
        speaker, code, take = m.groups()
    else:
        m = ORIGINAL.match(path.stem)
        if m is None or not SPEAKER.match(path.parent.name):
            return None
        speaker, (code, take) = path.parent.name, m.groups()
    return SpeechItem(path=path, label=SAVEE_CODES[code], speaker=speaker.upper(), corpus="savee",
                      info={"take": int(take)})


def load_savee(root: str | Path) -> list[SpeechItem]:
    """Every SAVEE clip under ``root``, in either layout."""
    return scan(root, "SAVEE", parse_savee, EXPECTED)

"""EMO-DB.

About the dataset
-----------------
The Berlin Database of Emotional Speech (Burkhardt et al., Interspeech 2005,
TU Berlin): 535 German utterances from ten actors (five male, five female)
speaking ten neutral-content sentences, 16 kHz. Users download ``download.zip``
from emodb.bilderbar.info (free, no formal licence text; audEERING's packaging
declares CC0-1.0); cite Burkhardt et al. 2005.

Layout: ``wav/SSTTTEV.wav``, e.g. ``03a01Fa.wav``: speaker (03, 08-16), text
(a01-a07, b01-b10), emotion letter (labels.EMODB_CODES: W anger, L boredom,
E disgust, A fear, F happiness, T sadness, N neutral), version (a, b, ...).
Expected counts: W 127, L 81, E 46, A 69, F 71, T 62, N 79 (535).

"boredom" has no counterpart elsewhere; it stays the canonical "boredom"
label, and models that do not predict it drop those clips (see labels.py).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from ..labels import EMODB_CODES
from .speech import SpeechItem, label_counts, scan

NAME = re.compile(r"^(\d{2})([ab]\d{2})([WLEAFTN])([a-z])$")
EXPECTED = "03a01Fa.wav (speaker, text, emotion letter, version)"
EXPECTED_COUNTS = {"angry": 127, "boredom": 81, "disgust": 46, "fear": 69, "happy": 71, "sad": 62, "neutral": 79}


def parse_emodb(path: Path) -> SpeechItem | None:
    m = NAME.match(path.stem)
    if m is None:
        return None
    speaker, text, emotion, version = m.groups()
    return SpeechItem(path=path, label=EMODB_CODES[emotion], speaker=speaker, corpus="emodb",
                      info={"text": text, "version": version,
                            "sex": "male" if speaker in {"03", "10", "11", "12", "15"} else "female"})


def load_emodb(root: str | Path) -> list[SpeechItem]:
    """Every EMO-DB clip under ``root``; warns when a full-size copy has unexpected counts."""
    items = scan(root, "EMO-DB", parse_emodb, EXPECTED)
    counts = label_counts(items)
    if len(items) == sum(EXPECTED_COUNTS.values()) and counts != EXPECTED_COUNTS:
        warnings.warn(f"{root}: 535 EMO-DB files but per-emotion counts {counts} differ from the release's "
                      f"{EXPECTED_COUNTS}: check for renamed or substituted files", stacklevel=2)
    return items

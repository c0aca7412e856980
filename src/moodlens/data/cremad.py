"""CREMA-D.

About the dataset
-----------------
The Crowd-sourced Emotional Multimodal Actors Dataset (Cao et al. 2014, IEEE
Transactions on Affective Computing 5(4)): 7,442 clips from 91 actors (48 male,
43 female, aged 20-74, several ethnicities) speaking 12 sentences in six
emotions. Users get it from github.com/CheyneyComputerScience/CREMA-D (Git LFS)
or Kaggle ("AudioWAV" folder); licence Open Database License (ODbL 1.0) with the
Database Contents License.

Layout: ``AudioWAV/AAAA_SSS_EEE_LL.wav``: actor 1001-1091, sentence code (IEO,
TIE, IOM, IWW, TAI, MTI, IWL, ITH, DFA, ITS, TSI, WSI), emotion
(labels.CREMAD_CODES: ANG, DIS, FEA, HAP, NEU, SAD), level (LO, MD, HI, XX =
unspecified; a few files carry a single X). No surprise and no calm clips.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..labels import CREMAD_CODES
from .speech import SpeechItem, scan

NAME = re.compile(r"^(\d{4})_([A-Z]{3})_(ANG|DIS|FEA|HAP|NEU|SAD)_([A-Z]{1,2})$", re.IGNORECASE)
EXPECTED = "AudioWAV/1001_DFA_ANG_XX.wav"


def parse_cremad(path: Path) -> SpeechItem | None:
    m = NAME.match(path.stem)
    if m is None:
        return None
    actor, sentence, emotion, level = m.groups()
    return SpeechItem(path=path, label=CREMAD_CODES[emotion.upper()], speaker=actor, corpus="cremad",
                      info={"sentence": sentence.upper(), "level": level.upper()})


def load_cremad(root: str | Path) -> list[SpeechItem]:
    """Every CREMA-D clip under ``root``."""
    return scan(root, "CREMA-D", parse_cremad, EXPECTED)

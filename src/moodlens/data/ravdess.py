"""RAVDESS speech and song.

About the dataset
-----------------
The Ryerson Audio-Visual Database of Emotional Speech and Song (Livingstone &
Russo 2018, PLoS ONE 13(5):e0196391): 24 professional actors (12 male, odd
numbers; 12 female, even), two fixed sentences ("Kids are talking by the door",
"Dogs are sitting by the door"). Audio-only speech is 1,440 files (60 per
actor), audio-only song 1,012 (actor 18 has no song). Users get it from Zenodo
(doi:10.5281/zenodo.1188976: Audio_Speech_Actors_01-24.zip,
Audio_Song_Actors_01-24.zip) or Kaggle; licence CC BY-NC-SA 4.0.

Layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav`` (the shared copy is ``.flac``):
modality (01 audio-video, 02 video, 03 audio: only audio files are read),
vocal channel (01 speech, 02 song), emotion (labels.RAVDESS_CODES: 01 neutral,
02 calm, 03 happy, 04 sad, 05 angry, 06 fearful, 07 disgust, 08 surprised),
intensity (01 normal, 02 strong; neutral has normal only), statement (01, 02),
repetition (01, 02), actor (01-24). Counts per actor: speech 60 (neutral 4,
every other emotion 8); song 44 (emotions 01-06).

"calm" has no counterpart in the other corpora; it stays the canonical "calm"
label. Known defect: Actor_07's 03-01-03-01-02-01-07 and 03-01-03-01-02-02-07
are the same recording (identical bytes in every copy found); the trainer and
the evaluator drop byte-identical duplicates (speech.drop_duplicates).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..labels import RAVDESS_CODES
from .speech import SpeechItem, scan

NAME = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d{2})$")
EXPECTED = "Actor_XX/03-01-EE-II-SS-RR-AA.wav (speech) or 03-02-... (song)"
CHANNELS = {"01": "speech", "02": "song"}


def parse_ravdess(path: Path) -> SpeechItem | None:
    m = NAME.match(path.stem)
    if m is None:
        return None
    _, channel, emotion, intensity, statement, repetition, actor = m.groups()
    return SpeechItem(path=path, label=RAVDESS_CODES[emotion], speaker=actor, corpus="ravdess",
                      info={"channel": CHANNELS[channel], "intensity": "strong" if intensity == "02" else "normal",
                            "statement": int(statement), "repetition": int(repetition),
                            "sex": "male" if int(actor) % 2 else "female"})


def load_ravdess(root: str | Path, channels: tuple[str, ...] = ("speech", "song")) -> list[SpeechItem]:
    """Every RAVDESS audio file under ``root``; ``channels`` keeps speech and/or song."""
    items = scan(root, "RAVDESS", parse_ravdess, EXPECTED)
    kept = [i for i in items if i.info["channel"] in channels]
    if not kept:
        from ..errors import DataError

        raise DataError(f"{root}: {len(items)} RAVDESS files, but none of vocal channel {', '.join(channels)}")
    return kept

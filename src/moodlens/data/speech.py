"""Speech corpora: the record every recipe returns, and speaker-independent splits.

Each corpus has its own recipe module (ravdess, cremad, tess, savee, emodb) that
parses labels and speakers from the file names users download. Splits always
hold out whole speakers: an emotion classifier that has heard a speaker in
training scores far higher on that speaker's other clips, so a random split
would report a number nobody gets on a new voice. No leaking split is offered.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import DataError

# Audio files a recipe looks at (the shared copies are FLAC, the originals WAV).
SPEECH_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}


@dataclass(frozen=True)
class SpeechItem:
    path: Path  # the audio file
    label: str  # canonical emotion (labels.py)
    speaker: str  # speaker id as the corpus writes it ("01", "DC", "1001", "OAF")
    corpus: str  # ravdess | cremad | tess | savee | emodb
    info: dict = field(default_factory=dict, compare=False, hash=False)  # corpus extras (intensity, sentence, ...)

    @property
    def speaker_key(self) -> str:
        """Unique across corpora: speaker "03" of EMO-DB is not RAVDESS actor 03."""
        return f"{self.corpus}:{self.speaker}"


def scan(root: str | Path, corpus: str, parse: Callable[[Path], SpeechItem | None], expected: str) -> list[SpeechItem]:
    """Parse every audio file under ``root`` (recursively, sorted) with ``parse``.

    Files whose names do not match are skipped; a folder where nothing matches
    is a :class:`DataError` naming the folder and the expected pattern.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder ({corpus})")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    audio = [p for p in files if p.suffix.lower() in SPEECH_SUFFIXES]
    items = [item for item in map(parse, audio) if item is not None]
    if not items:
        seen = f"{len(audio)} audio files, none named like" if audio else "no audio files (.wav/.flac/.ogg/.mp3); expected"
        raise DataError(f"{root}: not a {corpus} folder: {seen} {expected}")
    return items


def normalise_speaker(speaker: str | int) -> str:
    """"07", 7 and "7" are the same speaker (YAML reads 07 as the integer 7)."""
    s = str(speaker).strip()
    return s.lstrip("0") or "0" if s.isdigit() else s


def expand_speakers(spec: Iterable[str | int]) -> set[str]:
    """Speaker list with ranges: ["01-16"], [17, 18], ["DC", "JE"] -> normalised ids."""
    out: set[str] = set()
    for entry in spec:
        text = str(entry).strip()
        lo, sep, hi = text.partition("-")
        if sep and lo.isdigit() and hi.isdigit():
            out.update(str(i) for i in range(int(lo), int(hi) + 1))
        else:
            out.add(normalise_speaker(text))
    return out


def select_speakers(items: list[SpeechItem], speakers: Iterable[str | int] | None, where: str = "") -> list[SpeechItem]:
    """Items of the listed speakers (all when ``speakers`` is None)."""
    if speakers is None:
        return list(items)
    wanted = expand_speakers(speakers)
    chosen = [i for i in items if normalise_speaker(i.speaker) in wanted]
    if not chosen:
        have = sorted({i.speaker for i in items})
        raise DataError(f"{where or 'data'}: none of the speakers {sorted(wanted)} found; present: {', '.join(have)}")
    return chosen


def speaker_split(items: list[SpeechItem], val_speakers: Iterable[str] | None = None, val_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[SpeechItem], list[SpeechItem]]:
    """(train, val) with whole speakers held out.

    ``val_speakers`` lists speaker keys ("ravdess:17") or bare ids; otherwise
    ``val_fraction`` of each corpus's speakers (at least one, never all) is drawn
    with ``seed``, so every corpus is represented on both sides.
    """
    by_corpus: dict[str, list[str]] = defaultdict(list)
    for key in sorted({i.speaker_key for i in items}):
        by_corpus[key.split(":", 1)[0]].append(key)
    if val_speakers is not None:
        wanted = {normalise_speaker(s) for s in val_speakers}
        held = {k for k in sum(by_corpus.values(), []) if k in wanted or normalise_speaker(k.split(":", 1)[1]) in wanted}
    else:
        rng = random.Random(seed)
        held = set()
        for corpus, keys in by_corpus.items():
            if len(keys) < 2:
                raise DataError(f"{corpus}: only one speaker ({keys[0]}); a speaker-independent split needs two or more")
            n = min(len(keys) - 1, max(1, round(len(keys) * val_fraction)))
            held.update(rng.sample(keys, n))
    if not held:
        raise DataError(f"no validation speakers selected from {', '.join(sum(by_corpus.values(), []))}")
    train = [i for i in items if i.speaker_key not in held]
    val = [i for i in items if i.speaker_key in held]
    return train, val


def drop_duplicates(items: list[SpeechItem]) -> tuple[list[SpeechItem], list[tuple[Path, Path]]]:
    """Remove byte-identical files (RAVDESS Actor_07 has one take under two names).

    Only files of equal size are hashed, so this costs little. Returns the kept
    items and (dropped, kept-copy) pairs.
    """
    by_size: dict[int, list[SpeechItem]] = defaultdict(list)
    for item in items:
        try:
            by_size[item.path.stat().st_size].append(item)
        except OSError:
            by_size[-id(item)].append(item)  # unreadable: left for the loader to report
    first: dict[str, Path] = {}
    dropped: dict[Path, Path] = {}
    for size, group in by_size.items():
        if len(group) < 2 or size <= 0:  # empty files are reported as such by the loader, not as copies
            continue
        for item in group:
            digest = hashlib.sha1(item.path.read_bytes()).hexdigest()
            if digest in first:
                dropped[item.path] = first[digest]
            else:
                first[digest] = item.path
    return [i for i in items if i.path not in dropped], list(dropped.items())


def label_counts(items: Iterable[SpeechItem]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for i in items:
        counts[i.label] += 1
    return dict(sorted(counts.items()))


def load_speech_corpus(corpus: str, root: str | Path, **options) -> list[SpeechItem]:
    """Dispatch to a recipe by name: ravdess, cremad (crema-d), tess, savee, emodb (emo-db)."""
    from . import cremad, emodb, ravdess, savee, tess

    recipes = {"ravdess": ravdess.load_ravdess, "cremad": cremad.load_cremad, "tess": tess.load_tess,
               "savee": savee.load_savee, "emodb": emodb.load_emodb}
    name = corpus.lower().replace("-", "").replace("_", "")
    if name not in recipes:
        raise DataError(f"unknown speech corpus {corpus!r}; one of {', '.join(SPEECH_CORPORA)}")
    return recipes[name](root, **options)


SPEECH_CORPORA = ("ravdess", "cremad", "tess", "savee", "emodb")

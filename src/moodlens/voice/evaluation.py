"""Evaluate a voice model on a labelled speech corpus (every file is test data).

Runs on a core install: the clips go through :class:`VoiceRecognizer` exactly
as a user's files do. Clips whose label the model cannot predict (EMO-DB's
boredom for the default model) are counted and left out; files that cannot be
read are listed and left out; the rest are scored with accuracy, unweighted
average recall (UAR: the mean of per-class recalls, the usual headline in
speech emotion work because corpora are unbalanced), per-class metrics and the
confusion matrix.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from ..data.speech import SpeechItem, label_counts
from ..errors import DataError
from ..evaluate import Report, report
from .recognizer import VoiceRecognizer


def voice_probabilities(recognizer: VoiceRecognizer, items: list[SpeechItem], progress: bool = False
                        ) -> tuple[np.ndarray, list[int], list[dict]]:
    """(probabilities of the usable items, their indices, failures)."""
    probs, used, failed = [], [], []
    iterator = items
    if progress:
        try:
            from tqdm import tqdm

            iterator = tqdm(items, desc="evaluating", leave=False, mininterval=2, disable=None)
        except ImportError:
            pass
    for i, item in enumerate(iterator):
        r = recognizer.predict_file(item.path, segment=False)
        if r.error:
            failed.append({"file": str(item.path), "error": r.error})
            continue
        probs.append([r.scores[l] for l in recognizer.labels])
        used.append(i)
    return np.asarray(probs, np.float64).reshape(-1, len(recognizer.labels)), used, failed


def evaluate_voice(recognizer: VoiceRecognizer, items: list[SpeechItem], relabel: dict[str, str] | None = None,
                   source: str = "", progress: bool = False) -> Report:
    """Accuracy, UAR, per-class report and confusion matrix over ``items``."""
    return score_voice(recognizer, items, relabel, source, progress)[0]


def score_voice(recognizer: VoiceRecognizer, items: list[SpeechItem], relabel: dict[str, str] | None = None,
                source: str = "", progress: bool = False) -> tuple[Report, np.ndarray, np.ndarray]:
    """:func:`evaluate_voice`'s report, with the probabilities and true label indices it was
    computed from (one row per clip that could be used), for calibration figures."""
    relabel = relabel or {}
    labels = recognizer.labels
    mapped = [relabel.get(i.label, i.label) for i in items]
    keep = [m in labels for m in mapped]
    dropped = Counter(m for m, k in zip(mapped, keep) if not k)
    kept = [i for i, k in zip(items, keep) if k]
    if not kept:
        raise DataError(f"{source or 'data'}: none of its labels ({', '.join(label_counts(items))}) "
                        f"are known to the model ({', '.join(labels)})")
    started = time.perf_counter()
    probs, used, failed = voice_probabilities(recognizer, kept, progress)
    seconds = time.perf_counter() - started
    if not used:
        raise DataError(f"{source or 'data'}: none of its {len(kept)} files could be used; first error: "
                        f"{failed[0]['error']}")
    true = np.array([labels.index(relabel.get(kept[j].label, kept[j].label)) for j in used], np.int64)
    pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, np.int64)
    speakers = sorted({kept[j].speaker_key for j in used})
    rep = report(true, pred, labels, model=str(recognizer.model.path), data=source,
                 dropped=dict(dropped), failed=failed, speakers=speakers, seconds=round(seconds, 3))
    return rep, probs, true

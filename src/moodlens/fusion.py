"""Combine the face and voice distributions into one mood.

The rule (a confidence-weighted linear opinion pool):

    fused(l) = sum_m  w_m * c_m * p_m(l)  /  sum_m  w_m * c_m

where ``w_m`` is the configured weight of modality m and ``c_m`` its
confidence on this input, ``1 - H(p_m) / log K_m`` (0 for a uniform
distribution, 1 for a one-hot one). A modality that is unsure thus counts less
than one that is sure, whatever the weights; if both are flat the plain weights
decide.

Labels are aligned by canonical name, never by index. The face models know the
basic seven; the voice model adds "calm". With both modalities present, labels
that only one of them can express are folded into their nearest basic label
(``FOLD``: calm -> neutral, boredom -> neutral, contempt -> disgust) so each
modality votes over the same set; the per-modality results keep their own
labels. With one modality the fused result is that modality's own distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .labels import CANONICAL

# Where labels that the other modality cannot express go when both are fused.
FOLD: dict[str, str] = {"calm": "neutral", "boredom": "neutral", "contempt": "disgust"}


@dataclass
class FusionSettings:
    face_weight: float = 1.0  # relative trust in the face modality
    voice_weight: float = 1.0  # relative trust in the voice modality
    use_confidence: bool = True  # scale each weight by the modality's confidence on this input
    fold: dict[str, str] = field(default_factory=lambda: dict(FOLD))

    def __post_init__(self):
        for name in ("face_weight", "voice_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.face_weight == 0 and self.voice_weight == 0:
            raise ValueError("face_weight and voice_weight cannot both be 0")
        for src, dst in self.fold.items():
            if src not in CANONICAL or dst not in CANONICAL:
                raise ValueError(f"fold {src!r} -> {dst!r}: both must be canonical labels ({', '.join(CANONICAL)})")


@dataclass
class Fused:
    """The fused mood and how it was reached."""

    label: str | None  # None when neither modality gave a result
    score: float
    scores: dict[str, float]
    modalities: list[str]  # those that contributed: ["face", "voice"], ["face"], ...
    weights: dict[str, float]  # effective weight of each contributing modality (sums to 1)
    confidence: dict[str, float]  # each contributing modality's confidence on this input
    notes: list[str] = field(default_factory=list)  # e.g. "voice missing: face alone"

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4),
                "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "modalities": self.modalities, "weights": {k: round(v, 4) for k, v in self.weights.items()},
                "confidence": {k: round(v, 4) for k, v in self.confidence.items()}, "notes": self.notes}


def confidence(scores: dict[str, float]) -> float:
    """1 - normalised entropy: 0 for a uniform distribution, 1 for certainty."""
    p = [max(0.0, v) for v in scores.values()]
    total = sum(p)
    if len(p) < 2 or total <= 0:
        return 0.0
    entropy = -sum(v / total * math.log(v / total) for v in p if v > 0)
    return max(0.0, 1.0 - entropy / math.log(len(p)))


def _fold(scores: dict[str, float], fold: dict[str, str], keep: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, value in scores.items():
        target = label if label in keep else fold.get(label)
        if target is None:
            continue  # a label with nowhere to go: its mass is dropped and the rest renormalised
        out[target] = out.get(target, 0.0) + value
    total = sum(out.values())
    return {k: v / total for k, v in out.items()} if total > 0 else out


def fuse(face: dict[str, float] | None, voice: dict[str, float] | None,
         settings: FusionSettings | None = None, notes: list[str] | None = None) -> Fused:
    """Fuse two label -> probability maps; either may be None (missing or failed)."""
    s = settings or FusionSettings()
    notes = list(notes or [])
    given = {m: p for m, p in (("face", face), ("voice", voice)) if p}
    weight = {"face": s.face_weight, "voice": s.voice_weight}
    given = {m: p for m, p in given.items() if weight[m] > 0}
    if not given:
        return Fused(None, 0.0, {}, [], {}, {}, notes + ["no modality gave a result"])
    conf = {m: confidence(p) for m, p in given.items()}
    if len(given) == 1:
        (m, p), = given.items()
        other = "voice" if m == "face" else "face"
        if not any(n.startswith(other) for n in notes):
            notes.append(f"{other} not used: {m} alone")
        return _result(dict(p), [m], {m: 1.0}, conf, notes)
    shared = set(given["face"]) & set(given["voice"])
    aligned = {m: _fold(p, s.fold, shared) for m, p in given.items()}
    raw = {m: weight[m] * (conf[m] if s.use_confidence else 1.0) for m in given}
    if sum(raw.values()) <= 0:  # both flat: fall back to the plain weights
        raw = {m: weight[m] for m in given}
    total = sum(raw.values())
    eff = {m: raw[m] / total for m in given}
    labels = [l for l in CANONICAL if any(l in a for a in aligned.values())]
    scores = {l: sum(eff[m] * aligned[m].get(l, 0.0) for m in given) for l in labels}
    return _result(scores, list(given), eff, conf, notes)


def _result(scores: dict[str, float], modalities: list[str], weights: dict[str, float],
            conf: dict[str, float], notes: list[str]) -> Fused:
    label = max(scores, key=scores.get)
    return Fused(label, float(scores[label]), {k: float(v) for k, v in scores.items()}, modalities, weights,
                 conf, notes)

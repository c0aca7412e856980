"""Classify the emotion of speech. ``VoiceRecognizer`` is the Python voice API.

A clip (up to ``long_seconds`` of audio) is trimmed, loudness-normalised and
turned into features exactly as in training (:mod:`.audio`); its 3 s windows
are classified and their probabilities averaged. A longer recording is first
cut into speech segments by an energy detector, each segment classified the
same way, giving a timeline; the file's label is the duration-weighted mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, MoodlensError
from ..registry import load_model
from ..results import Segment, VoiceResult
from .audio import (HOP, SILENT_DBFS, FeatureSettings, features, frame_db, prepare_clip, read_wave, resample,
                    to_mono, windows)


@dataclass
class VoiceOptions:
    long_seconds: float = 10.0  # s: longer inputs are segmented into a timeline (None/False/True in predict overrides)
    window_hop_seconds: float = 1.5  # s between the 3 s windows averaged over one clip or segment
    vad_range_db: float = 40.0  # dB: frames this far below the loudest frame are never speech
    vad_above_floor_db: float = 10.0  # dB: speech must be this far above the noise floor (10th percentile frame)
    min_speech: float = 0.5  # s: shorter voiced stretches are ignored
    min_silence: float = 0.4  # s: shorter pauses do not end a segment
    max_segment: float = 6.0  # s: longer speech is cut into equal parts no longer than this
    pad: float = 0.1  # s of context added around each segment


def speech_segments(wave: np.ndarray, rate: int, opts: VoiceOptions = VoiceOptions(),
                    source: str = "<array>") -> list[tuple[int, int]]:
    """(start, stop) sample ranges of speech, found by frame energy with hysteresis.

    Energy is a poor voice detector in babble or music, but it is cheap, needs
    no model, and on recordings of one speaker it finds the utterances.
    """
    db = frame_db(wave)
    peak = float(db.max())
    if peak < SILENT_DBFS:
        raise InputError(f"{source}: silent (loudest frame {peak:.0f} dBFS, below {SILENT_DBFS:.0f} dBFS)")
    threshold = max(np.percentile(db, 10) + opts.vad_above_floor_db, peak - opts.vad_range_db, SILENT_DBFS)
    voiced = db > threshold
    fps = rate / HOP
    runs = _runs(voiced)
    # close short pauses, then drop short bursts (clicks, breaths)
    merged: list[list[int]] = []
    for a, b in runs:
        if merged and a - merged[-1][1] < opts.min_silence * fps:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    spans = []
    pad, max_len = int(opts.pad * rate), int(opts.max_segment * rate)
    for a, b in merged:
        if b - a < opts.min_speech * fps:
            continue
        start, stop = max(0, a * HOP - pad), min(len(wave), b * HOP + pad)
        parts = max(1, int(np.ceil((stop - start) / max_len)))
        edges = np.linspace(start, stop, parts + 1).astype(int)
        spans.extend(zip(edges[:-1].tolist(), edges[1:].tolist()))
    return spans


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def as_wave(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """An array from the caller (float in [-1, 1] or integer PCM, mono or (frames, channels))."""
    samples = np.asarray(samples)
    if samples.size == 0:
        raise InputError("<array>: contains no audio samples")
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        samples = (samples.astype(np.float32) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    elif not np.issubdtype(samples.dtype, np.floating):
        raise InputError(f"<array>: unsupported sample type {samples.dtype}")
    if samples.ndim == 2 and samples.shape[0] < samples.shape[1] and samples.shape[0] <= 8:
        samples = samples.T  # (channels, frames) as torchaudio/librosa give it
    if samples.ndim > 2:
        raise InputError(f"<array>: expected (frames,) or (frames, channels) audio, got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise InputError("<array>: contains NaN or infinite samples")
    return resample(to_mono(samples), rate, target)


class VoiceRecognizer:
    """Classify the emotion in speech recordings.

    >>> voice = VoiceRecognizer()
    >>> r = voice.predict("talk.wav")
    >>> r.label, r.score, [(s.start, s.end, s.label) for s in r.segments]
    """

    def __init__(self, model: str = "default", threads: int = 1, options: VoiceOptions | None = None):
        self.model = load_model(model, task="voice", threads=threads)
        self.labels = self.model.labels
        spec = self.model.meta["input"].get("features")
        if not isinstance(spec, dict):
            raise ModelError(f"{self.model.path}: voice model metadata has no input.features")
        self.settings = FeatureSettings.from_dict(spec)
        self.rate = self.settings.sample_rate
        self.options = options or VoiceOptions()

    def classify_clip(self, clip: np.ndarray) -> np.ndarray:
        """Probabilities (K,) for one prepared clip (trimmed, normalised, at ``self.rate``)."""
        x = windows(features(clip, self.settings), self.settings, self.options.window_hop_seconds)
        return self.model.probabilities(x).mean(axis=0)

    def predict(self, source: str | Path | np.ndarray, sample_rate: int | None = None,
                segment: bool | None = None, name: str | None = None) -> VoiceResult:
        """Emotion of an audio file or array (``sample_rate`` defaults to the model's).

        ``segment``: None segments inputs longer than ``options.long_seconds``;
        True/False force it. ``name``: what error messages call the input (default:
        the path, or "<array>"). Raises :class:`InputError` for unusable audio.
        """
        if isinstance(source, np.ndarray):
            name, wave = name or "<array>", as_wave(source, sample_rate or self.rate, self.rate)
        else:
            name, wave = name or str(source), read_wave(source, self.rate)
        return self.predict_wave(wave, name, segment)

    def predict_wave(self, wave: np.ndarray, name: str = "<array>", segment: bool | None = None) -> VoiceResult:
        duration = len(wave) / self.rate
        if segment is None:
            segment = duration > self.options.long_seconds
        if not segment:
            return self._result(name, self.classify_clip(prepare_clip(wave, name, self.rate)), duration)
        segments, weights = [], []
        for start, stop in speech_segments(wave, self.rate, self.options, name):
            try:
                p = self.classify_clip(prepare_clip(wave[start:stop], name, self.rate))
            except InputError:
                continue  # a stretch that is all breath or click once trimmed
            k = int(p.argmax())
            segments.append(Segment(start / self.rate, stop / self.rate, self.labels[k], float(p[k]),
                                    dict(zip(self.labels, p.astype(float).tolist()))))
            weights.append(stop - start)
        if not segments:
            raise InputError(f"{name}: no speech found (no stretch of sound of at least "
                             f"{self.options.min_speech:.1f} s above the noise floor)")
        probs = np.array([[s.scores[l] for l in self.labels] for s in segments])
        mean = np.average(probs, axis=0, weights=np.asarray(weights, float))
        return self._result(name, mean, duration, segments)

    def _result(self, name: str, p: np.ndarray, duration: float, segments: list[Segment] | None = None) -> VoiceResult:
        k = int(p.argmax())
        return VoiceResult(source=name, label=self.labels[k], score=float(p[k]),
                           scores=dict(zip(self.labels, p.astype(float).tolist())), duration=duration,
                           segments=segments or [])

    def predict_file(self, path: str | Path, segment: bool | None = None) -> VoiceResult:
        """Like :meth:`predict`, but never raises for a bad file: the error is
        recorded in the result so a batch can go on."""
        try:
            return self.predict(path, segment=segment)
        except MoodlensError as exc:
            return VoiceResult(source=str(path), error=str(exc))

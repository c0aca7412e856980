"""Classify the emotion of speech. ``VoiceRecognizer`` is the Python voice API.

A clip (up to ``long_seconds`` of audio) is trimmed, loudness-normalised and
turned into features exactly as in training (:mod:`.audio`); its 3 s windows
are classified and their probabilities averaged. A longer recording is first
cut into speech segments by a voice activity detector (:mod:`.vad`), each
segment classified the same way, giving a timeline; the file's label is the
duration-weighted mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError, MoodlensError, NoSpeechError
from ..registry import load_model
from ..results import Segment, VoiceResult
from .audio import (HOP, SILENT_DBFS, FeatureSettings, features, frame_db, prepare_clip, read_wave, resample,
                    to_mono, windows)
from .vad import FRAME as VAD_FRAME, OFFSET, ONSET, RATE as VAD_RATE, SileroVAD, hysteresis, spans_from_mask


@dataclass
class VoiceOptions:
    long_seconds: float = 10.0  # s: longer inputs are segmented into a timeline (None/False/True in predict overrides)
    window_hop_seconds: float = 1.5  # s between the 3 s windows averaged over one clip or segment
    vad: str = "silero"  # silero (bundled network) | energy (level above the noise floor): finds speech in long audio
    vad_onset: float = ONSET  # silero: speech probability that starts speech ...
    vad_offset: float = OFFSET  # ... and the one it must fall below to end it
    vad_range_db: float = 40.0  # energy: frames this far below the loudest frame are never speech
    vad_above_floor_db: float = 10.0  # energy: speech must be this far above the noise floor (10th percentile frame)
    min_speech: float = 0.5  # s: shorter voiced stretches are ignored
    min_silence: float = 0.4  # s: shorter pauses do not end a segment
    max_segment: float = 6.0  # s: longer speech is cut into equal parts no longer than this
    pad: float = 0.1  # s of context added around each segment


def speech_segments(wave: np.ndarray, rate: int, opts: VoiceOptions = VoiceOptions(),
                    source: str = "<array>", vad: SileroVAD | None = None) -> list[tuple[int, int]]:
    """(start, stop) sample ranges of speech, found by ``opts.vad``.

    ``silero`` scores each 32 ms frame with the bundled voice activity network
    (``vad`` reuses a loaded one); ``energy`` keeps frames above the noise floor,
    which is cheap and needs no model but takes music and steady noise for speech.
    """
    db = frame_db(wave)
    peak = float(db.max())
    if peak < SILENT_DBFS:
        raise NoSpeechError(f"{source}: silent (loudest frame {peak:.0f} dBFS, below {SILENT_DBFS:.0f} dBFS)")
    if opts.vad == "silero":
        vad = vad or SileroVAD()
        at_16k = resample(wave, rate, VAD_RATE)
        mask = hysteresis(vad.probabilities(at_16k), opts.vad_onset, opts.vad_offset)
        hop = VAD_FRAME * rate / VAD_RATE  # samples of ``wave`` per VAD frame
    elif opts.vad == "energy":
        threshold = max(np.percentile(db, 10) + opts.vad_above_floor_db, peak - opts.vad_range_db, SILENT_DBFS)
        mask, hop = db > threshold, HOP
    else:
        raise ValueError(f"voice activity detector must be silero or energy, not {opts.vad!r}")
    return spans_from_mask(mask, hop, len(wave), opts.min_speech, opts.min_silence, opts.pad,
                           opts.max_segment, rate)


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
        self._vad: SileroVAD | None = None  # loaded on first use: short clips never need it

    @property
    def vad(self) -> SileroVAD:
        if self._vad is None:
            self._vad = SileroVAD()
        return self._vad

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

    def predict_speech(self, samples: np.ndarray, sample_rate: int | None = None, name: str = "<array>") -> VoiceResult:
        """The emotion of the speech in a short chunk (the live microphone's few seconds).

        Only speech counts: the chunk is cut to the stretch from its first to its
        last speech segment, and a chunk with none (silence, music, noise, a cough)
        raises :class:`NoSpeechError` instead of being classified as some emotion.
        """
        wave = as_wave(samples, sample_rate or self.rate, self.rate)
        spans = self._speech(wave, name)
        clip = prepare_clip(wave[spans[0][0]:spans[-1][1]], name, self.rate)
        return self._result(name, self.classify_clip(clip), len(wave) / self.rate)

    def _speech(self, wave: np.ndarray, name: str) -> list[tuple[int, int]]:
        vad = self.vad if self.options.vad == "silero" else None
        spans = speech_segments(wave, self.rate, self.options, name, vad)
        if not spans:
            raise NoSpeechError(f"{name}: no speech found (no stretch of speech of at least "
                                f"{self.options.min_speech:.1f} s; voice activity detector: {self.options.vad})")
        return spans

    def predict_wave(self, wave: np.ndarray, name: str = "<array>", segment: bool | None = None) -> VoiceResult:
        duration = len(wave) / self.rate
        if segment is None:
            segment = duration > self.options.long_seconds
        if not segment:
            return self._result(name, self.classify_clip(prepare_clip(wave, name, self.rate)), duration)
        segments, weights = [], []
        for start, stop in self._speech(wave, name):
            try:
                p = self.classify_clip(prepare_clip(wave[start:stop], name, self.rate))
            except InputError:
                continue  # a stretch that is all breath or click once trimmed
            k = int(p.argmax())
            segments.append(Segment(start / self.rate, stop / self.rate, self.labels[k], float(p[k]),
                                    dict(zip(self.labels, p.astype(float).tolist()))))
            weights.append(stop - start)
        if not segments:
            raise InputError(f"{name}: no speech found (every speech segment was too short once trimmed)")
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

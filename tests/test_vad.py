"""Voice activity detection: the bundled Silero network against its known
behaviour (speech found in a real clip, music and noise left out), the span
logic, the live microphone path, and bad model files."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from moodlens.errors import InputError, ModelError, NoSpeechError
from moodlens.voice.audio import read_wave
from moodlens.voice.recognizer import VoiceOptions, VoiceRecognizer, speech_segments
from moodlens.voice.vad import FRAME, WEIGHTS, SileroVAD, hysteresis, spans_from_mask

from conftest import ANGRY_CLIP, need
from voicekit import SR, tiny_voice_onnx, voice_model  # noqa: F401


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


def chords(seconds: float, seed: int = 0, level: float = 0.3) -> np.ndarray:
    """Music-like audio: a new three-note chord of harmonic tones every half second."""
    rng = np.random.default_rng(seed)
    n, beat = int(seconds * SR), SR // 2
    t = np.arange(beat) / SR
    out = np.zeros(n, np.float32)
    for start in range(0, n, beat):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        tone = sum(np.sin(2 * np.pi * root * r * h * t) / h for r in (1.0, 1.26, 1.5) for h in (1, 2, 3))
        piece = (tone * np.exp(-3 * t))[: n - start]
        out[start:start + len(piece)] = piece
    return (level * out / np.abs(out).max()).astype(np.float32)


def speech_clip() -> np.ndarray:
    return read_wave(need(ANGRY_CLIP), SR)


def test_one_probability_per_32_ms_frame(vad, monkeypatch):
    for n in (0, 1, FRAME - 1, FRAME, FRAME + 1, 40 * FRAME):
        p = vad.probabilities(np.zeros(n, np.float32))
        assert p.shape == (-(-n // FRAME),) and p.dtype == np.float32
    # long audio is scored in blocks with the LSTM state carried across them,
    # so the block size leaves no trace in the probabilities
    rng = np.random.default_rng(0)
    wave = 0.05 * rng.standard_normal(700 * FRAME).astype(np.float32)
    whole = vad.probabilities(wave)
    assert len(whole) == 700 and np.all((whole >= 0) & (whole <= 1))
    monkeypatch.setattr("moodlens.voice.vad.BLOCK", 7)
    np.testing.assert_allclose(vad.probabilities(wave), whole, atol=1e-5)


def test_speech_is_found_and_music_and_noise_are_not(vad):
    speech = speech_clip()
    noise = 0.02 * np.random.default_rng(1).standard_normal(2 * SR).astype(np.float32)
    music = chords(3.0)
    wave = np.concatenate([music, speech, noise])
    mask = hysteresis(vad.probabilities(wave))
    t = np.arange(len(mask)) * FRAME / SR
    in_speech = (t >= 3.0) & (t < 3.0 + len(speech) / SR)
    assert mask[in_speech].mean() > 0.3  # RAVDESS clips hold ~1.5 s of speech in ~3.5 s
    assert mask[~in_speech].mean() < 0.05  # music and noise


def test_the_energy_detector_takes_music_for_speech_and_silero_does_not():
    music = np.concatenate([np.zeros(SR, np.float32), chords(12.0), np.zeros(SR, np.float32)])
    assert speech_segments(music, SR, VoiceOptions(vad="energy"))  # why silero is the default
    assert speech_segments(music, SR, VoiceOptions(vad="silero")) == []
    with pytest.raises(ValueError, match="silero or energy"):
        speech_segments(music, SR, VoiceOptions(vad="webrtc"))


def test_long_recording_timeline_keeps_music_out(voice_model):
    speech = speech_clip()
    rec = VoiceRecognizer(voice_model)
    wave = np.concatenate([chords(6.0), speech, chords(6.0, seed=1), speech])
    r = rec.predict(wave)
    assert r.segments, r
    first_speech, second_speech = 6.0, 12.0 + len(speech) / SR
    for seg in r.segments:  # every segment lies inside one of the two clips
        inside = [first_speech - 0.2 <= seg.start and seg.end <= first_speech + len(speech) / SR + 0.2,
                  second_speech - 0.2 <= seg.start and seg.end <= second_speech + len(speech) / SR + 0.2]
        assert any(inside), (seg.start, seg.end)
    with pytest.raises(InputError, match="no speech found"):
        rec.predict(chords(15.0))


def test_live_chunk_is_cut_to_its_speech_or_refused(voice_model):
    rec = VoiceRecognizer(voice_model)
    speech = speech_clip()
    alone = rec.predict(speech, sample_rate=SR, segment=False)
    with_music = rec.predict_speech(np.concatenate([chords(1.0), speech]), SR, name="chunk")
    assert with_music.label == alone.label
    for not_speech in (chords(3.0), 0.05 * np.random.default_rng(2).standard_normal(3 * SR)):
        with pytest.raises(NoSpeechError, match="chunk: no speech found"):
            rec.predict_speech(not_speech, SR, name="chunk")
    with pytest.raises(NoSpeechError, match="chunk: silent"):
        rec.predict_speech(np.zeros(3 * SR, np.float32), SR, name="chunk")


def test_spans_close_short_pauses_drop_short_bursts_and_split_long_runs():
    hop = 160  # 100 frames per second
    mask = np.zeros(2000, bool)
    mask[100:200] = mask[220:300] = True  # 1 s + 0.8 s, 0.2 s apart: one span
    mask[600:620] = True  # 0.2 s burst: dropped
    mask[1000:1900] = True  # 9 s: two parts of 4.5 s
    spans = spans_from_mask(mask, hop, 2000 * hop, min_speech=0.5, min_silence=0.4, pad=0.0, max_segment=6.0, rate=SR)
    assert [(a / SR, b / SR) for a, b in spans] == [(1.0, 3.0), (10.0, 14.5), (14.5, 19.0)]


def test_a_model_file_that_is_not_the_vad_is_refused(tmp_path, tiny_voice_onnx):
    with pytest.raises(ModelError, match="no such model file"):
        SileroVAD(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        SileroVAD(junk)
    with pytest.raises(ModelError, match="not Silero's sequence VAD graph"):
        SileroVAD(tiny_voice_onnx)


def test_shipped_file_matches_its_recorded_sha256():
    card = (WEIGHTS.parent / "silero_vad.md").read_text()
    recorded = re.search(r"silero_vad.onnx.*?([0-9a-f]{64})", card)
    assert recorded, "silero_vad.md records no sha256 for silero_vad.onnx"
    assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == recorded.group(1)
    assert (WEIGHTS.parent / "LICENSE-MIT-silero-vad.txt").read_text().startswith("MIT License")

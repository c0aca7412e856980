"""Voice inference: audio reading, features (vs librosa), bad inputs, the
recogniser with its timeline, and ``moodlens voice`` end to end."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from moodlens.cli import main
from moodlens.errors import InputError, ModelError
from moodlens.labels import VOICE_EMOTIONS
from moodlens.voice import audio as A
from moodlens.voice.recognizer import VoiceOptions, VoiceRecognizer, speech_segments

from voicekit import SR, bad_files, espeak, tiny_voice_onnx, voice_model, voiced, write  # noqa: F401

# --- reading and preparing audio ------------------------------------------------


@pytest.mark.parametrize("fmt, subtype, suffix", [
    ("WAV", "PCM_16", ".wav"), ("WAV", "PCM_24", ".wav"), ("WAV", "FLOAT", ".wav"), ("WAV", "DOUBLE", ".wav"),
    ("WAV", "ULAW", ".wav"), ("WAV", "PCM_U8", ".wav"), ("FLAC", "PCM_16", ".flac"), ("OGG", "VORBIS", ".ogg"),
    ("MP3", "MPEG_LAYER_III", ".mp3"),
])
def test_formats_are_read_resampled_and_mixed_down(tmp_path, fmt, subtype, suffix):
    import soundfile as sf

    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    stereo = np.stack([voiced(1.0, sr=44100), voiced(1.0, sr=44100)], axis=1)
    path = write(tmp_path / f"clip{suffix}", stereo, 44100, format=fmt, subtype=subtype)
    wave = A.read_wave(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - SR) < 0.02 * SR  # 1 s at 16 kHz (MP3 adds codec delay)
    assert 0.2 < np.abs(wave).max() < 0.4


def test_resampling_keeps_pitch_with_and_without_soxr(monkeypatch):
    t = np.arange(48000) / 48000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    for _ in range(2):
        out = A.resample(tone, 48000, SR)
        assert len(out) == SR
        peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SR / len(out)
        assert abs(peak_hz - 440) <= 1
        monkeypatch.setitem(sys.modules, "soxr", None)  # second round: the numpy fallback


def test_prepare_trims_silence_and_normalises_loudness():
    speech = voiced(1.0)
    for gain in (0.02, 1.0, 3.0):
        padded = np.concatenate([np.zeros(SR), speech * gain, np.zeros(SR // 2)]).astype(np.float32)
        clip = A.prepare_clip(padded)
        assert abs(len(clip) / SR - 1.0) < 0.15
        db = A.frame_db(clip)
        level = 10 * np.log10(np.mean(10 ** (db[db > db.max() - A.ACTIVE_DB] / 10)))
        assert abs(level - A.TARGET_DBFS) < 0.5


def test_feature_shapes_and_units():
    s = A.FeatureSettings()
    assert s.clip_frames == 301 and s.n_features == 64  # 3 s at 10 ms hops, centred framing
    tone = (0.1 * np.sin(2 * np.pi * 1000 * np.arange(3 * SR) / SR)).astype(np.float32)
    lm = A.features(tone, s)
    assert lm.shape == (64, 301) and lm.dtype == np.float32
    centres = A._mel_to_hz(np.linspace(A._hz_to_mel(s.fmin), A._hz_to_mel(s.fmax), s.n_mels + 2))[1:-1]
    assert abs(centres[lm[:, 150].argmax()] - 1000) < 60  # energy lands in the 1 kHz band
    assert lm.min() == pytest.approx(10 * np.log10(s.amin))  # floored in dB
    assert A.features(tone, A.FeatureSettings(kind="mfcc")).shape == (40, 301)
    assert A.features(tone[:SR // 2], s).shape == (64, 51)


def test_numpy_features_match_librosa():
    librosa = pytest.importorskip("librosa")
    s = A.FeatureSettings()
    y = voiced(1.5) + 0.01 * np.random.default_rng(0).standard_normal(int(1.5 * SR)).astype(np.float32)
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=s.n_fft, win_length=s.win_length, hop_length=s.hop,
                                         n_mels=s.n_mels, fmin=s.fmin, fmax=s.fmax, power=2.0, center=True,
                                         pad_mode="constant")
    ref = librosa.power_to_db(mel, ref=1.0, amin=s.amin, top_db=None)
    assert np.abs(A.log_mel(y, s) - ref).max() < 1e-3  # dB
    ref_mfcc = librosa.feature.mfcc(S=ref, n_mfcc=s.n_mfcc)
    assert np.abs(A.features(y, A.FeatureSettings(kind="mfcc")) - ref_mfcc).max() < 1e-2


@pytest.mark.parametrize("f0", [70.0, 120.0, 230.0, 440.0])
def test_pitch_track_finds_the_fundamental_of_harmonic_voices(f0):
    t = np.arange(SR) / SR
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 8)).astype(np.float32) * 0.1
    hz, voicing = A.pitch_track(tone)
    assert hz.shape == voicing.shape == (A.log_mel(tone).shape[1],)  # the log-mel frames, one for one
    for n in (SR - 1, SR - 81, SR - 161):  # odd lengths too (the tracker runs at half the rate)
        assert len(A.pitch_track(tone[:n])[0]) == A.log_mel(tone[:n]).shape[1]
    inner = slice(5, -5)  # the edge frames see the zero padding
    assert np.abs(12 * np.log2(hz[inner] / f0)).max() < 0.1  # semitones
    assert voicing[inner].min() > 0.9


def test_pitch_track_follows_a_glide_and_calls_noise_and_silence_unvoiced():
    glide = voiced(2.0, f0=150.0, syllables=0.5)  # 150 Hz +- 8 %, 0.7 Hz vibrato
    hz, _ = A.pitch_track(glide)
    t = np.arange(len(hz)) * A.HOP / SR
    expected = 150.0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    ok = hz > 0
    assert ok.mean() > 0.8 and np.median(np.abs(12 * np.log2(hz[ok] / expected[ok]))) < 0.2
    noise = (0.1 * np.random.default_rng(0).standard_normal(SR)).astype(np.float32)
    for signal in (noise, np.zeros(SR, np.float32)):
        hz, voicing = A.pitch_track(signal)
        assert (hz == 0).all() and (voicing == 0).all()


def test_prosody_rows_follow_the_spectral_ones():
    s = A.FeatureSettings(prosody=True)
    assert s.n_features == 66 and s.n_spectral == 64
    feat = A.features(voiced(1.0, f0=200.0), s)
    assert feat.shape == (66, 101) and np.array_equal(feat[:64], A.features(voiced(1.0, f0=200.0)))
    semitones, voicing = feat[64], feat[65]
    assert np.median(semitones[voicing > 0]) == pytest.approx(12 * np.log2(200 / A.PITCH_REF_HZ), abs=1.5)
    assert (semitones[voicing == 0] == 0).all()
    column = A.silence_column(s)
    assert column.shape == (66, 1) and (column[64:] == 0).all()  # padding is unvoiced
    assert A.FeatureSettings.from_dict(A.FeatureSettings().to_dict()).prosody is False  # older models


def test_windows_cover_long_clips_and_pad_short_ones():
    s = A.FeatureSettings()
    short = A.windows(np.zeros((64, 120), np.float32), s)
    assert short.shape == (1, 1, 64, 301)
    assert (short[0, 0, :, :90] == 10 * np.log10(s.amin)).all()  # centred, silence around
    long = A.windows(np.zeros((64, 1000), np.float32), s)
    assert long.shape[0] == 6  # starts 0, 150, ..., 600, and 699 aligned with the end


# --- bad input --------------------------------------------------------------------


def test_every_bad_file_gives_a_clear_message_naming_it(tmp_path, voice_model):
    rec = VoiceRecognizer(voice_model)
    for case, (path, phrase) in bad_files(tmp_path).items():
        result = rec.predict_file(path)
        assert result.error is not None, case
        assert str(path) in result.error and phrase in result.error, (case, result.error)
        with pytest.raises(InputError):
            rec.predict(path)
    assert rec.predict_file(tmp_path / "good.wav").ok


def test_cli_batch_goes_on_past_bad_files(tmp_path, capsys, voice_model):
    cases = bad_files(tmp_path)
    code = main(["voice", str(tmp_path), str(tmp_path / "missing.wav"), "--model", voice_model, "--format", "json"])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    by_name = {r["source"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_name["good.wav"]["status"] == "ok" and by_name["good.wav"]["label"] in VOICE_EMOTIONS
    assert sum(r["status"] == "error" for r in rows) == len(cases)
    assert "missing.wav: no such file" in err and f"{len(cases) + 1} of {len(rows) + 1} inputs failed" in err


def test_arrays_of_any_type_and_rate(voice_model):
    rec = VoiceRecognizer(voice_model)
    speech = voiced(2.0)
    pcm16 = (speech * 32767).astype(np.int16)
    a = rec.predict(pcm16)
    b = rec.predict(np.stack([speech, speech]))  # (channels, frames)
    c = rec.predict(A.resample(speech, SR, 44100), sample_rate=44100)
    for r in (a, b, c):
        assert r.label in rec.labels and abs(sum(r.scores.values()) - 1) < 1e-4
        assert r.segments == []
    assert a.label == b.label and abs(a.duration - 2.0) < 1e-6
    with pytest.raises(InputError, match="NaN"):
        rec.predict(np.full(SR, np.nan, np.float32))


def test_long_recording_becomes_a_timeline(voice_model):
    # synthetic buzz is not speech to the silero detector (tests/test_vad.py); the energy one finds it
    rec = VoiceRecognizer(voice_model, options=VoiceOptions(vad="energy"))
    gap = np.zeros(int(1.2 * SR), np.float32)
    bursts = [voiced(3.0, f0=120 + 60 * i, seed=i) for i in range(4)]
    wave = np.concatenate([gap] + sum([[b, gap] for b in bursts], []))
    r = rec.predict(wave)  # 16.8 s > long_seconds
    assert len(r.segments) == 4
    for i, seg in enumerate(r.segments):
        start = 1.2 + i * 4.2
        assert abs(seg.start - start) < 0.3 and abs(seg.end - (start + 3.0)) < 0.3
        assert seg.label in rec.labels
    assert abs(sum(r.scores.values()) - 1) < 1e-4 and abs(r.duration - len(wave) / SR) < 1e-6
    assert rec.predict(wave, segment=False).segments == []
    spans = speech_segments(np.concatenate([gap, voiced(14.0), gap]), SR, VoiceOptions(vad="energy", max_segment=6.0))
    assert len(spans) == 3 and all((b - a) / SR <= 6.0 for a, b in spans)


def test_model_of_wrong_kind_and_missing_bundled(tiny_face_onnx):
    with pytest.raises(ModelError, match="a face model, but a voice model is needed"):
        VoiceRecognizer(str(tiny_face_onnx))
    from moodlens.registry import BUNDLED, DEFAULTS, available_models

    assert BUNDLED["voice-ensemble"] == ("voice", "voice_ensemble") and DEFAULTS["voice"] == "voice-ensemble"
    if "voice-ensemble" not in available_models("voice"):
        with pytest.raises(ModelError, match="bundled model 'voice-ensemble' is missing"):
            VoiceRecognizer()


# --- command line -----------------------------------------------------------------


def test_cli_table_json_csv_on_synthesized_clips(tmp_path, capsys, voice_model):
    a = write(tmp_path / "a.wav", voiced(2.0, f0=120))
    b = write(tmp_path / "b.flac", voiced(2.5, f0=260))
    long = write(tmp_path / "long.wav", np.concatenate([voiced(4.0), np.zeros(SR, np.float32), voiced(7.0, seed=3)]))
    assert main(["voice", str(a), str(b), "--model", voice_model]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 2 and table[0].startswith(f"{a}: ") and table[0].endswith("2.0 s")

    # synthetic buzz is not speech to the default silero detector: segment it by energy
    assert main(["voice", str(a), str(long), "--model", voice_model, "--format", "json", "--vad", "energy"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["segments"] for r in rows][0] == [] and len(rows[1]["segments"]) == 3  # 4 s + 7 s split in two
    assert set(rows[0]) >= {"source", "status", "label", "score", "scores", "duration", "segments", "error"}

    assert main(["voice", str(long), "--model", voice_model, "--format", "csv", "--segments", "always",
                 "--vad", "energy"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["segment"] for r in table] == ["all", "0", "1", "2"]
    assert set(VOICE_EMOTIONS) <= set(table[0])
    assert abs(sum(float(table[0][l]) for l in VOICE_EMOTIONS) - 1) < 1e-2


def test_cli_on_espeak_speech(tmp_path, capsys, voice_model):
    wav = espeak("Kids are talking by the door. Dogs are sitting by the door.", tmp_path / "speech.wav")
    if wav is None:
        pytest.skip("espeak-ng not installed")
    assert main(["voice", str(wav), "--model", voice_model, "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["label"] in VOICE_EMOTIONS and row["duration"] > 2


def test_core_voice_runs_without_torch(voice_model, tmp_path):
    from test_core_install import run

    wav = write(tmp_path / "x.wav", voiced(1.0))
    result = run(f"import moodlens; print(moodlens.VoiceRecognizer({voice_model!r}).predict({str(wav)!r}).label)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in VOICE_EMOTIONS


def test_python_module_entry_point(tmp_path, voice_model):
    wav = write(tmp_path / "x.ogg", voiced(1.0), format="OGG", subtype="VORBIS")
    out = subprocess.run([sys.executable, "-m", "moodlens", "voice", str(wav), "--model", voice_model,
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "ok"

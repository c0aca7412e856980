"""Helpers for the voice tests: synthetic speech-like audio, tiny corpora in
each corpus's file layout, bad files of every kind, and a tiny exported voice
model (untrained) so the pipeline is testable without the bundled weights."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, SHARED

BUNDLED_VOICE = ROOT / "src" / "moodlens" / "weights" / "voice_cnn.onnx"
RAVDESS = SHARED / "ravdess"
SR = 16000


def voiced(seconds: float, f0: float = 150.0, sr: int = SR, level: float = 0.3, syllables: float = 3.0,
           seed: int = 0) -> np.ndarray:
    """A harmonic 'voice' with a gliding pitch and syllable-rate loudness, float32 in [-1, 1]."""
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(h * phase) / h for h in range(1, 12))
    env = 0.15 + 0.85 * np.abs(np.sin(np.pi * syllables * t))
    y = y * env + 0.002 * np.random.default_rng(seed).standard_normal(len(t))
    return (level * y / np.abs(y).max()).astype(np.float32)


def write(path: Path, samples: np.ndarray, sr: int = SR, **kwargs) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sr, **kwargs)
    return path


def touch(root: Path, names: list[str]) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.touch()


def ravdess_corpus(root: Path, actors=(1, 2, 3), seconds: float = 1.2) -> Path:
    """RAVDESS-layout corpus: every emotion once per actor, pitch by emotion."""
    for actor in actors:
        for e in range(1, 9):
            name = f"Actor_{actor:02d}/03-01-{e:02d}-01-01-01-{actor:02d}.wav"
            write(root / name, voiced(seconds, f0=90 + 35 * e + 5 * actor, seed=actor * 10 + e))
    return root


def bad_files(root: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, phrase its error message must contain)."""
    root.mkdir(parents=True, exist_ok=True)
    good = write(root / "good.wav", voiced(1.0))
    raw = good.read_bytes()
    header = bytearray(raw[:44])
    struct.pack_into("<H", header, 20, 0x1234)  # a WAV format tag no decoder knows
    cases = {
        "empty": (root / "empty.wav", "empty file"),
        "silent": (write(root / "silent.wav", np.zeros(SR, np.float32)), "silent"),
        "too_short": (write(root / "short.wav", voiced(0.1)), "too short"),
        "truncated": (root / "truncated.wav", "damaged WAV"),
        "text": (root / "notes.wav", "not a readable audio file"),
        "png": (root / "picture.flac", "not a readable audio file"),
        "unsupported_format": (root / "codec.wav", "unsupported WAV sample format (format tag 0x1234"),
        "nan": (write(root / "nan.wav", np.full(SR, np.nan, np.float32), subtype="FLOAT"), "NaN"),
        "no_samples": (write(root / "nosamples.wav", np.zeros(0, np.float32)), "no audio samples"),
    }
    cases["empty"][0].write_bytes(b"")
    cases["truncated"][0].write_bytes(raw[:30])
    cases["text"][0].write_text("this is not audio\n" * 20)
    cases["png"][0].write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    cases["unsupported_format"][0].write_bytes(bytes(header) + raw[44:])
    return cases


def espeak(text: str, path: Path) -> Path | None:
    """Speech from espeak-ng when it is installed (None otherwise)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([exe, "-w", str(path), text], check=True, capture_output=True, timeout=30)
    return path


@pytest.fixture(scope="session")
def tiny_voice_onnx(tmp_path_factory) -> Path:
    """An untrained tiny voice CNN exported through the real export path."""
    pytest.importorskip("torch")
    import torch

    from moodlens.labels import VOICE_EMOTIONS
    from moodlens.train.export import export_onnx
    from moodlens.train.voice_nets import build_voice_net
    from moodlens.voice.audio import FeatureSettings

    torch.manual_seed(0)
    s = FeatureSettings()
    net = build_voice_net("cnn", len(VOICE_EMOTIONS), s.n_features, widths=(4, 4, 4, 4)).eval()
    path = tmp_path_factory.mktemp("voice_model") / "tiny_voice.onnx"
    meta = {"task": "voice", "labels": list(VOICE_EMOTIONS),
            "input": {"layout": "N,1,F,T", "features": s.to_dict(), "frames": s.clip_frames,
                      "sample_rate": s.sample_rate}, "card": {"name": "tiny-voice-test"}}
    export_onnx(net, torch.randn(2, 1, s.n_features, s.clip_frames) * 10 - 30, path, meta)
    return path


@pytest.fixture(scope="session")
def voice_model(tiny_voice_onnx) -> str:
    """The bundled voice model when present, else the tiny one (pipeline tests only)."""
    return str(BUNDLED_VOICE) if BUNDLED_VOICE.exists() else str(tiny_voice_onnx)

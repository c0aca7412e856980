"""Shared fixtures: paths to ../shared/data, tiny corpora made on the fly,
and a tiny exported model so the face pipeline is testable without the
bundled weights."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodlens.labels import FER_EMOTIONS

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MOODLENS_SHARED_DATA", ROOT.parent / "shared" / "data"))
MEDIA = SHARED / "media"
FER_CSV = SHARED / "fer2013" / "fer2013.csv.gz"
BUNDLED_FACE = ROOT / "src" / "moodlens" / "weights" / "face_resnet.onnx"


# OpenCV 5's main wheels dropped the Haar cascades (only the contrib wheels keep them);
# CI runs the suite on OpenCV 5 and the detector tests again on OpenCV 4 (.ci/run).
needs_haar = pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"),
                                reason=f"OpenCV {cv2.__version__} has no CascadeClassifier (Haar)")


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(scope="session")
def media() -> Path:
    return need(MEDIA)


def write_fer_csv(path: Path, n: int = 28, seed: int = 0, usages=("Training", "PublicTest")) -> np.ndarray:
    """A small FER-2013-layout CSV of structured random faces; returns labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(FER_EMOTIONS)
    lines = ["emotion,pixels,Usage"]
    for i, label in enumerate(labels):
        # a class-dependent gradient plus noise, so a model can learn something
        base = np.linspace(0, 255, 48 * 48).reshape(48, 48)
        img = (base * (label + 1) / 8 + rng.integers(0, 40, (48, 48))).clip(0, 255).astype(np.uint8)
        lines.append(f"{label},{' '.join(map(str, img.ravel()))},{usages[i % len(usages)]}")
    path.write_text("\n".join(lines) + "\n")
    return labels


@pytest.fixture()
def fer_csv(tmp_path) -> Path:
    path = tmp_path / "fer_small.csv"
    write_fer_csv(path)
    return path


@pytest.fixture(scope="session")
def tiny_face_onnx(tmp_path_factory) -> Path:
    """An untrained tiny ResNet exported through the real export path."""
    pytest.importorskip("torch")
    import torch

    from moodlens.train.export import export_onnx
    from moodlens.train.nets import build_net

    torch.manual_seed(0)
    net = build_net("resnet", 7, widths=(8, 8, 8, 8), blocks=(1, 1, 1, 1), stem=8).eval()
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    meta = {"task": "face", "labels": list(FER_EMOTIONS), "input": {"size": [48, 48], "channels": 1},
            "card": {"name": "tiny-test"}}
    export_onnx(net, torch.rand(2, 1, 48, 48), path, meta)
    return path


@pytest.fixture(scope="session")
def face_model(tiny_face_onnx) -> str:
    """The bundled model when present, else the tiny one (pipeline tests only)."""
    return str(BUNDLED_FACE) if BUNDLED_FACE.exists() else str(tiny_face_onnx)


# Real inputs shared by the analyze and serve tests.
FACE_VIDEO = MEDIA / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"  # no audio track
RAVDESS = SHARED / "ravdess"
ANGRY_CLIP = RAVDESS / "Actor_02" / "03-01-05-02-01-01-02.flac"  # RAVDESS code 05 = angry

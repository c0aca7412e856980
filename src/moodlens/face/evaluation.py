"""Evaluate a face model on labelled 48x48 crops (FER-2013 and friends)."""

from __future__ import annotations

import time

import numpy as np

from ..data import FaceData
from ..errors import DataError
from ..evaluate import Report, report
from ..runtime import OnnxModel
from .recognizer import face_input

BATCH = 256  # crops per ONNX Runtime call


def face_probabilities(model: OnnxModel, images: np.ndarray, tta: bool = False) -> np.ndarray:
    """Probabilities for (N, 48, 48) uint8 crops; ``tta`` averages with the mirror image."""
    out = []
    for i in range(0, len(images), BATCH):
        x = face_input(images[i:i + BATCH])
        p = model.probabilities(x)
        if tta:
            p = (p + model.probabilities(np.ascontiguousarray(x[..., ::-1]))) / 2
        out.append(p)
    return np.concatenate(out) if out else np.zeros((0, len(model.labels)), np.float32)


def align_labels(data: FaceData, model_labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Map the data's label indices onto the model's; rows whose label the
    model cannot predict are dropped (returned mask says which were kept)."""
    lookup = np.array([model_labels.index(l) if l in model_labels else -1 for l in data.label_names])
    mapped = lookup[data.labels]
    keep = mapped >= 0
    if not keep.any():
        raise DataError(f"{data.source}: none of its labels ({', '.join(data.label_names)}) are known to the model")
    return mapped, keep


def evaluate_face(model: OnnxModel, data: FaceData, tta: bool = False) -> Report:
    true, keep = align_labels(data, model.labels)
    started = time.perf_counter()
    probs = face_probabilities(model, data.images[keep], tta)
    seconds = time.perf_counter() - started
    pred = probs.argmax(axis=1)
    return report(true[keep], pred, model.labels, model=str(model.path), data=data.source,
                  tta=tta, dropped=int((~keep).sum()), seconds=round(seconds, 3))

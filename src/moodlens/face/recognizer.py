"""Detect -> crop -> classify. ``FaceRecognizer`` is the Python face API.

The crop that reaches the model is built by :func:`face_input`, the same
transform the trainer applies to FER-2013 crops (grayscale, 48x48, /255), so
training and inference cannot drift apart.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import MoodlensError
from ..images import read_image, to_bgr8
from ..registry import load_model
from ..results import Box, FaceResult, ImageResult
from .detect import FaceDetector, make_detector, to_gray

FACE_SIZE = 48  # model input side, pixels

# How FER-2013 crops frame a face relative to a Haar box, measured by running
# the cascade on padded, upscaled FER-2013 faces (benchmarks/crop_geometry.py,
# 604 faces): the crop side is a median 1.03 box sides, centred on the box
# (median shifts below 0.5% of the side). Cropping photos the same way feeds the
# model faces framed as in training.
CROP_SCALE = 1.03
CROP_SHIFT_Y = 0.0


def face_input(gray_faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Grayscale uint8 face crops (any size) -> float32 (N, 1, 48, 48) in [0, 1]."""
    batch = np.empty((len(gray_faces), 1, FACE_SIZE, FACE_SIZE), np.float32)
    for i, face in enumerate(gray_faces):
        if face.shape != (FACE_SIZE, FACE_SIZE):
            interp = cv2.INTER_AREA if min(face.shape) > FACE_SIZE else cv2.INTER_LINEAR
            face = cv2.resize(face, (FACE_SIZE, FACE_SIZE), interpolation=interp)
        batch[i, 0] = face
    batch *= 1.0 / 255.0
    return batch


def crop_face(gray: np.ndarray, box: Box, scale: float = CROP_SCALE, shift_y: float = CROP_SHIFT_Y) -> np.ndarray:
    """Square crop around ``box`` framed like FER-2013; edges are replicated."""
    side = max(box.w, box.h) * scale
    cx = box.x + box.w / 2
    cy = box.y + box.h / 2 + shift_y * box.h
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    h, w = gray.shape
    pad = max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return gray[y0:y0 + s, x0:x0 + s]


@dataclass
class FaceRecognizerOptions:
    model: str = "default"  # bundled name or path to a moodlens face .onnx
    detector: str = "haar"  # "haar" or "yunet:PATH.onnx"
    threads: int = 1  # ONNX Runtime intra-op threads
    crop_scale: float = CROP_SCALE  # crop side / detector box side


class FaceRecognizer:
    """Find faces and classify their emotion.

    >>> faces = FaceRecognizer()
    >>> for r in faces.predict("group.jpg"):
    ...     print(r.box, r.label, r.score)
    """

    def __init__(self, model: str = "default", detector: str | FaceDetector = "haar", threads: int = 1,
                 crop_scale: float = CROP_SCALE):
        self.model = load_model(model, task="face", threads=threads)
        self.labels = self.model.labels
        self.detector_spec = detector
        self.detector = make_detector(detector)
        self.crop_scale = crop_scale

    def fork(self) -> "FaceRecognizer":
        """A recogniser for another thread: the same model (ONNX Runtime sessions
        are thread-safe) with its own detector (OpenCV's cascade is not)."""
        twin = copy.copy(self)
        twin.detector = make_detector(self.detector_spec)
        return twin

    def classify(self, gray_faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Probabilities (N, K) for grayscale face crops; K = len(self.labels)."""
        if len(gray_faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.model.probabilities(face_input(gray_faces))

    def _results(self, probs: np.ndarray, boxes: list, source: str) -> list[FaceResult]:
        out = []
        for p, (box, det_score) in zip(probs, boxes):
            k = int(p.argmax())
            out.append(FaceResult(box=box, label=self.labels[k], score=float(p[k]),
                                  scores={l: float(v) for l, v in zip(self.labels, p)},
                                  source=source, detector_score=det_score))
        return out

    def predict(self, source: str | Path | np.ndarray, detect: bool = True) -> list[FaceResult]:
        """Faces in an image file or BGR/gray array. ``detect=False`` treats the
        whole image as one face crop. Raises :class:`InputError` for bad input."""
        if isinstance(source, np.ndarray):
            name, image = "<array>", to_bgr8(source)
        else:
            name, image = str(source), read_image(source)
        return self.predict_array(image, name, detect)

    def predict_array(self, image: np.ndarray, name: str = "<array>", detect: bool = True) -> list[FaceResult]:
        gray = to_gray(image)
        if not detect:
            return self._results(self.classify([gray]), [(None, None)], name)
        # Left to right (then top down): detectors run in parallel internally and
        # return faces in varying order, and callers expect the same output twice.
        found = sorted(self.detector.detect(image), key=lambda f: (f[0].x, f[0].y))
        crops = [crop_face(gray, box, self.crop_scale) for box, _ in found]
        return self._results(self.classify(crops), found, name)

    def predict_file(self, path: str | Path, detect: bool = True) -> ImageResult:
        """Like :meth:`predict`, but never raises for a bad file: the error is
        recorded in the result so a batch can go on."""
        try:
            image = read_image(path)
            faces = self.predict_array(image, str(path), detect)
            return ImageResult(source=str(path), faces=faces, size=(image.shape[1], image.shape[0]))
        except MoodlensError as exc:
            return ImageResult(source=str(path), error=str(exc))

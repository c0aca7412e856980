"""Face detectors behind one interface. They return boxes and know no emotions.

``HaarDetector`` (OpenCV's frontal-face cascade, shipped inside the
opencv-python-headless wheel) is the default: nothing to download. Its
parameters were chosen on ../shared/data/media/face_boxes.csv (17 annotated
faces in three group photos) plus dogs.jpg (no person) by
benchmarks/detector_params.py: scaleFactor 1.1, minNeighbors 6, minSize 30 found
15/17 faces with no extra box and 2 false faces on the dogs, the best F1 of the
48 settings tried.
``YuNetDetector`` plugs in OpenCV's YuNet when the user has its .onnx file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ..errors import ModelError
from ..results import Box

# Photos larger than this (longest side, pixels) are shrunk for detection only;
# boxes are scaled back to the original. Haar cost grows with the pixel count
# and faces in bigger photos are big enough to survive the shrink.
DETECT_MAX_SIDE = 1024


class FaceDetector(Protocol):
    def detect(self, image: np.ndarray) -> list[tuple[Box, float | None]]:
        """Faces in a BGR or grayscale uint8 image: (box, confidence or None)."""


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))  # a 2x20000 image keeps 1 row
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, scale


@dataclass
class HaarDetector:
    scale_factor: float = 1.1  # image pyramid step; larger is faster and misses more
    min_neighbors: int = 6  # overlapping hits needed to keep a face; larger = fewer false faces
    min_size: int = 30  # smallest face side, pixels in the (downscaled) detection image
    max_side: int = DETECT_MAX_SIDE  # downscale bigger images for detection
    cascade: str = "haarcascade_frontalface_default.xml"  # file in cv2.data.haarcascades, or a path

    def __post_init__(self):
        path = Path(self.cascade)
        if not path.is_file():
            path = Path(cv2.data.haarcascades) / self.cascade
        self._clf = cv2.CascadeClassifier(str(path))
        if self._clf.empty():
            raise ModelError(f"{path}: cannot load Haar cascade")

    def detect(self, image: np.ndarray) -> list[tuple[Box, float | None]]:
        gray, scale = _downscale(to_gray(image), self.max_side)
        gray = cv2.equalizeHist(gray)
        found = self._clf.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [(_rescale(x, y, w, h, scale), None) for (x, y, w, h) in found]


@dataclass
class YuNetDetector:
    model_path: str  # face_detection_yunet_*.onnx (from the OpenCV model zoo, supplied by the user)
    score_threshold: float = 0.7  # minimum face confidence
    max_side: int = DETECT_MAX_SIDE

    def __post_init__(self):
        if not Path(self.model_path).is_file():
            raise ModelError(f"{self.model_path}: YuNet model file not found")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError("this OpenCV build has no FaceDetectorYN (needs OpenCV >= 4.5.4)")
        self._det = cv2.FaceDetectorYN.create(self.model_path, "", (320, 320), self.score_threshold)

    def detect(self, image: np.ndarray) -> list[tuple[Box, float | None]]:
        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        small, scale = _downscale(bgr, self.max_side)
        self._det.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self._det.detect(small)
        if faces is None:
            return []
        return [(_rescale(*f[:4], scale), float(f[-1])) for f in faces]


def _rescale(x, y, w, h, scale: float) -> Box:
    s = 1.0 / scale
    return Box(int(round(x * s)), int(round(y * s)), int(round(w * s)), int(round(h * s)))


def make_detector(spec: str | FaceDetector = "haar", **options) -> FaceDetector:
    """``"haar"``, ``"yunet:/path/model.onnx"``, or a ready detector object."""
    if not isinstance(spec, str):
        return spec
    if spec == "haar":
        return HaarDetector(**options)
    if spec.startswith("yunet:"):
        return YuNetDetector(spec.split(":", 1)[1], **options)
    raise ModelError(f"unknown detector {spec!r}; use 'haar' or 'yunet:PATH.onnx'")

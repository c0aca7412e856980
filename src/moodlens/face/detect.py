"""Face detectors behind one interface. They return faces and know no emotions.

``BlazeFaceDetector`` (MediaPipe's BlazeFace, shipped inside moodlens as ONNX;
see blazeface.py) is the default: a box, a score and six keypoints per face,
~3 ms per video frame, small faces found in photos by a tiled second pass.
``HaarDetector`` (OpenCV's frontal-face cascade) stays as an option where the
OpenCV build has it: the 4.x wheels and the 5.x contrib wheels. Its
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

from ..errors import MissingExtraError, ModelError
from ..images import shrink
from ..results import Box
from . import DETECTORS
from .blazeface import BlazeFaceDetector, Detection

# Photos larger than this (longest side, pixels) are shrunk for detection only;
# boxes are scaled back to the original. Haar cost grows with the pixel count
# and faces in bigger photos are big enough to survive the shrink.
DETECT_MAX_SIDE = 1024


class FaceDetector(Protocol):
    fast: bool  # cheap enough to run on every video frame

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a photo (BGR or grayscale uint8), as thoroughly as the detector can."""

    def detect_frame(self, image: np.ndarray) -> list[Detection]:
        """Faces in a video frame: one fast pass."""


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


@dataclass
class HaarDetector:
    fast = False  # 37-92 ms per 640x480 frame: video detects on every few frames and tracks between
    scale_factor: float = 1.1  # image pyramid step; larger is faster and misses more
    min_neighbors: int = 6  # overlapping hits needed to keep a face; larger = fewer false faces
    min_size: int = 30  # smallest face side, pixels in the (downscaled) detection image
    max_side: int = DETECT_MAX_SIDE  # downscale bigger images for detection
    cascade: str = "haarcascade_frontalface_default.xml"  # file in cv2.data.haarcascades, or a path

    def __post_init__(self):
        if not hasattr(cv2, "CascadeClassifier"):
            raise MissingExtraError(
                f"this OpenCV ({cv2.__version__}) has no Haar cascades (OpenCV 5 moved them to contrib): "
                "pip install opencv-contrib-python-headless, or use the default detector, blazeface")
        path = Path(self.cascade)
        if not path.is_file() and hasattr(cv2, "data"):
            path = Path(cv2.data.haarcascades) / self.cascade
        if not path.is_file():
            raise ModelError(f"{path}: Haar cascade file not found")
        self._clf = cv2.CascadeClassifier(str(path))
        if self._clf.empty():
            raise ModelError(f"{path}: cannot load Haar cascade")

    def detect(self, image: np.ndarray) -> list[Detection]:
        gray, scale = shrink(to_gray(image), self.max_side)
        gray = cv2.equalizeHist(gray)
        found = self._clf.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [Detection(_rescale(x, y, w, h, scale)) for (x, y, w, h) in found]

    detect_frame = detect


@dataclass
class YuNetDetector:
    fast = True
    model_path: str  # face_detection_yunet_*.onnx (from the OpenCV model zoo, supplied by the user)
    score_threshold: float = 0.7  # minimum face confidence
    max_side: int = DETECT_MAX_SIDE

    def __post_init__(self):
        if not Path(self.model_path).is_file():
            raise ModelError(f"{self.model_path}: YuNet model file not found")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise ModelError("this OpenCV build has no FaceDetectorYN (needs OpenCV >= 4.5.4)")
        self._det = cv2.FaceDetectorYN.create(self.model_path, "", (320, 320), self.score_threshold)

    def detect(self, image: np.ndarray) -> list[Detection]:
        bgr = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        small, scale = shrink(bgr, self.max_side)
        self._det.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self._det.detect(small)
        if faces is None:
            return []
        # YuNet's row: box, then five landmarks (right eye, left eye, nose tip,
        # right and left mouth corner), then the score. The eyes are what alignment needs.
        return [Detection(_rescale(*f[:4], scale), float(f[-1]), _yunet_keypoints(f[4:14], scale)) for f in faces]

    detect_frame = detect


def _yunet_keypoints(marks: np.ndarray, scale: float) -> tuple[tuple[float, float], ...]:
    """YuNet's five landmarks in BlazeFace's six-keypoint order (mouth centre
    from the two corners; ears unknown, given as the nearer eye)."""
    p = marks.reshape(5, 2) / scale
    mouth = (p[3] + p[4]) / 2
    return tuple((float(x), float(y)) for x, y in (p[0], p[1], p[2], mouth, p[0], p[1]))


def _rescale(x, y, w, h, scale: float) -> Box:
    s = 1.0 / scale
    return Box(int(round(x * s)), int(round(y * s)), int(round(w * s)), int(round(h * s)))


def make_detector(spec: str | FaceDetector = "blazeface", **options) -> FaceDetector:
    """``"blazeface"`` (full range), ``"blazeface:short"``, ``"blazeface:PATH.onnx"``,
    ``"haar"``, ``"yunet:/path/model.onnx"``, or a ready detector object."""
    if not isinstance(spec, str):
        return spec
    if spec == "blazeface":
        return BlazeFaceDetector(**options)
    if spec.startswith("blazeface:"):
        return BlazeFaceDetector(spec.split(":", 1)[1], **options)
    if spec == "haar":
        return HaarDetector(**options)
    if spec.startswith("yunet:"):
        return YuNetDetector(spec.split(":", 1)[1], **options)
    raise ModelError(f"unknown detector {spec!r}; use {DETECTORS}")

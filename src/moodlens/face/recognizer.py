"""Detect -> crop -> classify. ``FaceRecognizer`` is the Python face API.

The crop that reaches the model is built by :func:`face_input`, the same
transform the trainer applies to FER-2013 crops (grayscale, 48x48, /255), so
training and inference cannot drift apart.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, MoodlensError
from ..images import decode_image, read_image, to_bgr8
from ..registry import load_model
from ..results import Box, FaceResult, ImageResult
from .blazeface import Detection
from .detect import FaceDetector, make_detector, to_gray

FACE_SIZE = 48  # model input side, pixels

# How FER-2013 crops frame a face relative to a detector's box (crop side /
# box side, crop centre shift / box height), measured by running the detector
# on padded, upscaled FER-2013 faces (benchmarks/crop_geometry.py). Cropping
# photos the same way feeds the model faces framed as in training. A detector
# with other boxes says so in its ``crop_geometry`` (BlazeFace does); these are
# Haar's (604 faces): 1.03 box sides, centred (median shifts below 0.5%).
CROP_SCALE = 1.03
CROP_SHIFT_Y = 0.0

# Faces whose eye line is tilted by less than this are not rotated: FER-2013's
# own faces lean a median 4.8 degrees (quartiles 2-10, crop_geometry.py), and
# the model learned them that way.
ALIGN_MIN_DEGREES = 10.0


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


def crop_face(gray: np.ndarray, box: Box, scale: float = CROP_SCALE, shift_y: float = CROP_SHIFT_Y,
              angle: float = 0.0) -> np.ndarray:
    """Square crop around ``box`` framed like FER-2013; edges are replicated.
    ``angle`` (degrees, the eye line's clockwise tilt) rotates the face level."""
    side = max(box.w, box.h) * scale
    cx = box.x + box.w / 2
    cy = box.y + box.h / 2 + shift_y * box.h
    s = max(1, int(round(side)))
    if angle:
        # Rotate about the face centre and move that centre to the crop's centre.
        m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
        m[:, 2] += (s / 2 - cx, s / 2 - cy)
        return cv2.warpAffine(gray, m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = gray.shape
    pad = max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    return gray[y0:y0 + s, x0:x0 + s]


def read_image_file(path: str | Path, data: bytes | None = None) -> np.ndarray:
    """The image at ``path``, or decoded from ``data`` (its bytes, read already); raises InputError."""
    if data is None:
        return read_image(path)
    if not data:
        raise InputError(f"{path}: empty file")  # what read_image says of an empty file
    return decode_image(bytes(data), str(path))


@dataclass
class FaceRecognizerOptions:
    model: str = "default"  # bundled name or path to a moodlens face .onnx
    detector: str = "blazeface"  # "blazeface", "blazeface:short", "haar" or "yunet:PATH.onnx"
    threads: int = 1  # ONNX Runtime intra-op threads
    align: bool = True  # rotate faces tilted by more than ALIGN_MIN_DEGREES level (needs eye keypoints)


class FaceRecognizer:
    """Find faces and classify their emotion.

    >>> faces = FaceRecognizer()
    >>> for r in faces.predict("group.jpg"):
    ...     print(r.box, r.label, r.score)
    """

    def __init__(self, model: str = "default", detector: str | FaceDetector = "blazeface", threads: int = 1,
                 align: bool = True):
        self.model = load_model(model, task="face", threads=threads)
        self.labels = self.model.labels
        self.detector_spec = detector
        self.detector = make_detector(detector)
        self.align = align
        self.align_min_degrees = ALIGN_MIN_DEGREES
        # Crop framing for this detector's boxes (see CROP_SCALE).
        self.crop_scale, self.crop_shift_y = getattr(self.detector, "crop_geometry", (CROP_SCALE, CROP_SHIFT_Y))

    def fork(self) -> "FaceRecognizer":
        """A recogniser for another thread: the same model (ONNX Runtime sessions
        are thread-safe) with its own detector (OpenCV's cascade is not)."""
        twin = copy.copy(self)
        twin.detector = make_detector(self.detector_spec)
        return twin

    def crop(self, gray: np.ndarray, box: Box, eye_angle: float = 0.0) -> np.ndarray:
        """The model's view of a detected face: framed like FER-2013 and, when
        aligning, turned level if it leans more than ALIGN_MIN_DEGREES."""
        angle = eye_angle if self.align and abs(eye_angle) >= self.align_min_degrees else 0.0
        return crop_face(gray, box, self.crop_scale, self.crop_shift_y, angle)

    def classify(self, gray_faces: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Probabilities (N, K) for grayscale face crops; K = len(self.labels)."""
        if len(gray_faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.model.probabilities(face_input(gray_faces))

    def _results(self, probs: np.ndarray, found: list[Detection | None], source: str) -> list[FaceResult]:
        out = []
        for p, det in zip(probs, found):
            k = int(p.argmax())
            det = det or Detection(box=None)  # --no-detect: the whole image was the face
            out.append(FaceResult(box=det.box, label=self.labels[k], score=float(p[k]),
                                  scores={l: float(v) for l, v in zip(self.labels, p)}, source=source,
                                  detector_score=det.score, keypoints=det.keypoints))
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
            return self._results(self.classify([gray]), [None], name)
        # Left to right (then top down): Haar runs in parallel internally and
        # returns faces in varying order, and callers expect the same output twice.
        found = sorted(self.detector.detect(image), key=lambda d: (d.box.x, d.box.y))
        crops = [self.crop(gray, d.box, d.eye_angle()) for d in found]
        # A face cut by the image edge is cropped around its whole box (edges
        # replicated) but reported as the part inside the image.
        h, w = gray.shape
        shown = [dataclasses.replace(d, box=d.box.clipped(w, h)) for d in found]
        return self._results(self.classify(crops), shown, name)

    def predict_file(self, path: str | Path, detect: bool = True, data: bytes | None = None) -> ImageResult:
        """Like :meth:`predict`, but never raises for a bad file: the error is
        recorded in the result so a batch can go on. ``data``: the file's bytes
        when they were read already (a Ray Dataset of binary files); ``path``
        then only names the file."""
        try:
            image = read_image_file(path, data)
        except MoodlensError as exc:
            return ImageResult(source=str(path), error=str(exc))
        return self.predict_decoded(image, path, detect)

    def predict_decoded(self, image: np.ndarray, path: str | Path, detect: bool = True) -> ImageResult:
        """:meth:`predict_file` for an image decoded already (by :func:`read_image_file`)."""
        try:
            faces = self.predict_array(image, str(path), detect)
            return ImageResult(source=str(path), faces=faces, size=(image.shape[1], image.shape[0]))
        except MoodlensError as exc:
            return ImageResult(source=str(path), error=str(exc))

"""MediaPipe's BlazeFace detectors, run with numpy + ONNX Runtime.

Two models ship in ``moodlens/weights`` (converted from the Apache-2.0 TFLite
files by scripts/convert_blazeface.py; provenance in weights/blazeface.md):

- ``full`` (192x192 input, 2,304 anchors): faces up to a few metres away; the default.
- ``short`` (128x128, 896 anchors): faces near the camera, ~3x faster.

Each detection is a box, a score and six keypoints (eyes, nose tip, mouth,
ears). Everything the decoder needs (input side, anchor grid, threshold) is
read from the file's ``moodlens`` metadata, so a file is checked against what
it claims to be when it is loaded.

Small faces. A model sees the whole image letterboxed into its input, so a
face must be about 7% of the image's longer side to be found (~45 px in a
640x480 frame). For photos (:meth:`BlazeFaceDetector.detect`) a second pass
runs the model on overlapping square tiles of ``tile_fraction`` of the longer
side, which makes faces 2.5x larger relative to the input and finds them down
to ~3% of the side (the 30-40 px faces of group photos). Detections from all
passes are merged by MediaPipe's weighted non-maximum suppression. Video
(:meth:`detect_frame`) uses the single whole-image pass: ~3 ms per frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import ModelError
from ..images import shrink, to_bgr8
from ..results import Box

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
MODEL_FILES = {"full": WEIGHTS / "blazeface_full.onnx", "short": WEIGHTS / "blazeface_short.onnx"}
# Score thresholds chosen by benchmarks/detector_params.py --blazeface: the
# lowest with no false face on the annotated group photos or dogs.jpg (MediaPipe
# uses 0.6 and 0.5). At 0.4 full range finds 205 of 300 FER-2013 faces pasted
# into a photo (0.6: 154) and all 17 annotated faces; short range needs 0.6 to
# keep false faces off the dogs, where it finds 16 of the 17.
SCORE_THRESHOLDS = {"full": 0.4, "short": 0.6}
# Tiles show the model magnified background, where it sees more false faces:
# at 0.4 a shelf in the shared library video became a face on 13 of its 146
# frames, at 0.5 on none, with all 17 annotated faces still found at 1x-3x
# canvas sizes (tiles are what find them at 2x and 3x).
TILE_SCORE_THRESHOLD = 0.5
KEYPOINTS = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion")

# Photos are detected on a copy whose longer side is at most this (pixels):
# tiles are relative to the image, so resolution above this only costs time.
PHOTO_MAX_SIDE = 1280
TILE_OVERLAP = 0.25  # fraction of a tile shared with its neighbour: faces up to this size fit whole in one
MIN_TILE_SIDE = 96  # tiles smaller than this (pixels) would only upscale blur; small images skip tiling


@dataclass(frozen=True)
class Detection:
    """One face: its box, the detector's score and keypoints (x, y) in pixels."""

    box: Box
    score: float | None = None
    keypoints: tuple[tuple[float, float], ...] | None = None  # in KEYPOINTS order, when the detector gives them

    def keypoint(self, name: str) -> tuple[float, float] | None:
        return None if self.keypoints is None else self.keypoints[KEYPOINTS.index(name)]

    def eye_angle(self) -> float:
        """Degrees the line from the right eye to the left eye (as seen in the
        image: left to right) turns clockwise from horizontal; 0 without keypoints."""
        if self.keypoints is None:
            return 0.0
        (rx, ry), (lx, ly) = self.keypoints[0], self.keypoints[1]
        return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


@dataclass
class _Candidates:
    """Raw detections of one or more passes, in image pixels."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # x0, y0, x1, y1
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 6, 2), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def extend(self, boxes, keypoints, scores) -> None:
        self.boxes = np.concatenate([self.boxes, boxes])
        self.keypoints = np.concatenate([self.keypoints, keypoints])
        self.scores = np.concatenate([self.scores, scores])


def anchor_centres(input_size: int, grid: list[list[int]]) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1]: for each [stride, anchors per cell],
    cells row by row, every anchor of a cell at the cell's centre (MediaPipe's
    SSD anchors with fixed size 1)."""
    centres = []
    for stride, per_cell in grid:
        cells = -(-input_size // stride)
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        xy = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(xy, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (x0, y0, x1, y1) box with each row of ``others``."""
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(c: _Candidates, iou_threshold: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: the best remaining detection and every one
    overlapping it by more than ``iou_threshold`` become one face whose box and
    keypoints are their score-weighted mean and whose score is the best one's.
    Averaging, rather than keeping the winner, steadies boxes between frames."""
    order = np.argsort(-c.scores, kind="stable")
    faces = []
    while order.size:
        best = order[0]
        overlap = box_iou(c.boxes[best], c.boxes[order]) > iou_threshold
        members = order[overlap]
        members = members if members.size else order[:1]
        w = c.scores[members][:, None]
        box = (c.boxes[members] * w).sum(0) / w.sum()
        kps = (c.keypoints[members] * w[:, :, None]).sum(0) / w.sum()
        faces.append((box, kps, float(c.scores[best])))
        order = order[~overlap] if overlap.any() else order[1:]
    return faces


def _tiles(width: int, height: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of square tiles of ``side`` covering the image with
    at least TILE_OVERLAP overlap (the last row and column end at the edge)."""
    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = int(np.ceil((length - side) / (side * (1 - TILE_OVERLAP)))) + 1
        return [round(i * (length - side) / (count - 1)) for i in range(count)]

    return [(x, y) for y in starts(height) for x in starts(width)]


class BlazeFaceDetector:
    """BlazeFace through ONNX Runtime. ``model`` is ``"full"``, ``"short"`` or
    a path to a converted file; ``tiles`` turns the small-face pass of
    :meth:`detect` on or off."""

    fast = True  # cheap enough to run on every video frame
    # How FER-2013's crops frame the faces this detector finds in them (crop side
    # / box side, crop centre shift / box height; benchmarks/crop_geometry.py
    # --detector blazeface, 541 faces): the box is tighter than Haar's and sits a
    # little low on the face, so the classifier's crop is 1.13 box sides,
    # centred 3.5% of a box above it.
    crop_geometry = (1.13, -0.035)

    def __init__(self, model: str = "full", score_threshold: float | None = None, tiles: bool = True,
                 tile_fraction: float = 0.4, nms_iou: float | None = None, threads: int = 1):
        path = Path(MODEL_FILES.get(model, model))
        self.path = path
        self.session, meta = _load(path, threads)
        self.size = int(meta["input_size"])
        self.anchors = anchor_centres(self.size, meta["anchor_grid"])
        if score_threshold is None:
            score_threshold = SCORE_THRESHOLDS.get(model, meta["score_threshold"])
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(meta.get("nms_iou", 0.3) if nms_iou is None else nms_iou)
        self.tiles = tiles
        if not 0.1 <= tile_fraction <= 1.0:
            raise ValueError(f"tile_fraction must be in [0.1, 1], got {tile_fraction}")
        self.tile_fraction = tile_fraction
        self._input_name = self.session.get_inputs()[0].name
        _check_outputs(self, path)

    # -- public -----------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a photo (BGR or grayscale uint8): the whole image, then tiles for small faces."""
        bgr, scale = _prepare(image, PHOTO_MAX_SIDE)
        found = _Candidates()
        self._pass(bgr, 0, 0, bgr.shape[1], bgr.shape[0], found)
        h, w = bgr.shape[:2]
        side = round(self.tile_fraction * max(h, w))
        if self.tiles and side >= MIN_TILE_SIDE and side < max(h, w):
            for x, y in _tiles(w, h, side):
                self._pass(bgr, x, y, min(side, w - x), min(side, h - y), found, tile=True)
        return self._faces(found, scale)

    def detect_frame(self, image: np.ndarray) -> list[Detection]:
        """Faces in a video frame: one pass over the whole frame (~3 ms)."""
        bgr, scale = _prepare(image, max(image.shape[:2]))
        found = _Candidates()
        self._pass(bgr, 0, 0, bgr.shape[1], bgr.shape[0], found)
        return self._faces(found, scale)

    # -- internals --------------------------------------------------------------
    def _pass(self, bgr: np.ndarray, x0: int, y0: int, w: int, h: int, found: _Candidates,
              tile: bool = False) -> None:
        """Run the model on the region (x0, y0, w, h), letterboxed into the
        input (padded right and bottom), and add its detections in image pixels.
        A ``tile`` keeps only faces above TILE_SCORE_THRESHOLD, and drops faces
        touching a tile edge that is not the image's: they are cut in two and
        an overlapping tile holds them whole."""
        region = bgr[y0:y0 + h, x0:x0 + w]
        side = max(w, h)
        k = self.size / side
        rw, rh = max(1, round(w * k)), max(1, round(h * k))
        interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        canvas[:rh, :rw] = cv2.resize(region, (rw, rh), interpolation=interp)
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)
        x = (x * (1 / 127.5) - 1.0).transpose(2, 0, 1)[None]
        raw, logits = self._run(x)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[:, 0], -80.0, 80.0)))  # exp(88) overflows float32
        keep = scores >= (max(self.score_threshold, TILE_SCORE_THRESHOLD) if tile else self.score_threshold)
        if not keep.any():
            return
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        centre = raw[:, 0:2] / self.size + anchors
        half = raw[:, 2:4] / self.size / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1) * side  # region pixels
        kps = (raw[:, 4:16].reshape(-1, 6, 2) / self.size + anchors[:, None, :]) * side
        if tile:
            img_h, img_w = bgr.shape[:2]
            margin = 0.02 * side
            cut = ((boxes[:, 0] < margin) & (x0 > 0)) | ((boxes[:, 1] < margin) & (y0 > 0)) \
                | ((boxes[:, 2] > w - margin) & (x0 + w < img_w)) | ((boxes[:, 3] > h - margin) & (y0 + h < img_h))
            # A face larger than the overlap may be cut in every tile: the whole-image pass finds it.
            big = (boxes[:, 2] - boxes[:, 0]) > TILE_OVERLAP * side
            ok = ~(cut | big)
            boxes, kps, scores = boxes[ok], kps[ok], scores[ok]
        offset = np.array([x0, y0], np.float32)
        found.extend(boxes + np.tile(offset, 2), kps + offset, scores.astype(np.float32))

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.session.run(None, {self._input_name: x})
        regressors, logits = (out[0], out[1]) if out[0].shape[-1] == 16 else (out[1], out[0])
        return regressors[0], logits[0]

    def _faces(self, found: _Candidates, scale: float) -> list[Detection]:
        faces = []
        for box, kps, score in weighted_nms(found, self.nms_iou):
            x0, y0, x1, y1 = box / scale
            bw, bh = x1 - x0, y1 - y0
            if bw < 2 or bh < 2:
                continue
            faces.append(Detection(Box(int(round(x0)), int(round(y0)), int(round(bw)), int(round(bh))), score,
                                   tuple((float(px / scale), float(py / scale)) for px, py in kps)))
        return faces


def _prepare(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """BGR uint8 copy no larger than ``max_side``, and the scale applied."""
    return shrink(to_bgr8(image), max_side)


def _load(path: Path, threads: int):
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{path}: face detector model file not found")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
        raise ModelError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0][:200]})") from exc
    raw = session.get_modelmeta().custom_metadata_map.get("moodlens")
    try:
        meta = json.loads(raw) if raw else None
    except json.JSONDecodeError:
        meta = None
    if not meta or meta.get("task") != "face-detector":
        raise ModelError(f"{path}: not a moodlens face detector (no 'moodlens' metadata with task "
                         f"'face-detector'; convert it with scripts/convert_blazeface.py)")
    for key in ("input_size", "anchor_grid", "score_threshold"):
        if key not in meta:
            raise ModelError(f"{path}: detector metadata lacks '{key}'")
    return session, meta


def _check_outputs(det: BlazeFaceDetector, path: Path) -> None:
    """The graph must take (1, 3, S, S) and give one 16-value row and one score per anchor."""
    shape = det.session.get_inputs()[0].shape
    if list(shape[1:]) != [3, det.size, det.size]:
        raise ModelError(f"{path}: input shape {shape} does not match the metadata's {det.size}x{det.size}")
    shapes = sorted((list(o.shape) for o in det.session.get_outputs()), key=lambda s: -s[-1])
    n = len(det.anchors)
    if len(shapes) != 2 or shapes[0][1:] != [n, 16] or shapes[1][1:] != [n, 1]:
        raise ModelError(f"{path}: outputs {shapes} do not match {n} anchors with 16 values and 1 score")

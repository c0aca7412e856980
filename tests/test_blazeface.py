"""The bundled BlazeFace detector: decoding, NMS, keypoints, alignment, small
faces, awkward images, and broken model files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodlens.errors import ModelError
from moodlens.face.blazeface import (MODEL_FILES, BlazeFaceDetector, Detection, _Candidates, anchor_centres,
                                     weighted_nms)
from moodlens.face.recognizer import FaceRecognizer, crop_face
from moodlens.images import read_image
from moodlens.results import Box

from conftest import MEDIA, need

WEIGHTS = Path(MODEL_FILES["full"]).parent


@pytest.fixture(scope="module")
def full():
    return BlazeFaceDetector("full")


def portrait() -> np.ndarray:
    return read_image(need(MEDIA / "obama_small.jpg"))


def test_anchor_counts_match_mediapipe():
    assert len(anchor_centres(128, [[8, 2], [16, 6]])) == 896
    full = anchor_centres(192, [[4, 1]])
    assert len(full) == 2304
    # Row by row: the first anchors run along the top row of cells.
    assert np.allclose(full[0], [0.5 / 48, 0.5 / 48]) and np.allclose(full[1], [1.5 / 48, 0.5 / 48])


def test_weighted_nms_averages_overlapping_boxes():
    c = _Candidates()
    kps = np.zeros((3, 6, 2), np.float32)
    c.extend(np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32), kps,
             np.array([0.9, 0.3, 0.8], np.float32))
    faces = weighted_nms(c, 0.3)
    assert len(faces) == 2
    box, _, score = faces[0]
    assert score == pytest.approx(0.9)
    assert box[0] == pytest.approx((0 * 0.9 + 2 * 0.3) / 1.2)  # score-weighted mean, not the winner's box


def test_portrait_box_score_and_keypoints(full):
    image = portrait()
    faces = full.detect(image)
    assert len(faces) == 1
    face = faces[0]
    b = face.box
    assert 0.4 < face.score <= 1.0
    assert len(face.keypoints) == 6
    (rx, ry), (lx, ly) = face.keypoint("right_eye"), face.keypoint("left_eye")
    nx, ny = face.keypoint("nose_tip")
    mx, my = face.keypoint("mouth_center")
    # The person's right eye is on the image's left; eyes above the nose, nose above the mouth, all in the box.
    assert rx < lx and max(ry, ly) < ny < my
    for x, y in face.keypoints[:4]:
        assert b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h
    assert abs(face.eye_angle()) < 10


def test_rotated_face_reports_its_tilt_and_is_cropped_level(full):
    image = portrait()
    h, w = image.shape[:2]
    big = cv2.copyMakeBorder(image, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
    c = (big.shape[1] / 2, big.shape[0] / 2)
    tilted = cv2.warpAffine(big, cv2.getRotationMatrix2D(c, -25, 1.0), big.shape[1::-1],
                            borderMode=cv2.BORDER_REPLICATE)  # -25 in OpenCV's terms: clockwise on screen
    upright_angle = full.detect(big)[0].eye_angle()
    face = full.detect(tilted)[0]
    assert face.eye_angle() - upright_angle == pytest.approx(25, abs=6)
    gray = cv2.cvtColor(tilted, cv2.COLOR_BGR2GRAY)
    level = crop_face(gray, face.box, angle=face.eye_angle())
    # Detected again inside the levelled crop, the eyes are close to horizontal.
    again = full.detect(cv2.copyMakeBorder(level, 60, 60, 60, 60, cv2.BORDER_REPLICATE))
    assert again and abs(again[0].eye_angle()) < 8


def test_tiles_find_faces_too_small_for_one_pass():
    # The annotated group photo in the corner of a canvas three times its size:
    # its faces are ~2.5% of the longer side, below what one pass can see.
    image = read_image(need(MEDIA / "2008_007676.jpg"))
    h, w = image.shape[:2]
    canvas = np.full((3 * h, 3 * w, 3), 120, np.uint8)
    canvas[:h, :w] = image
    one_pass = BlazeFaceDetector("full", tiles=False).detect(canvas)
    tiled = BlazeFaceDetector("full").detect(canvas)
    assert len(one_pass) <= 2
    assert len(tiled) == 7
    assert all(d.box.x + d.box.w <= w + 5 and d.box.y + d.box.h <= h + 5 for d in tiled)


@pytest.mark.parametrize("make", [
    lambda: np.zeros((20, 30, 3), np.uint8),  # smaller than the model input
    lambda: np.full((1, 4000, 3), 200, np.uint8),  # one row
    lambda: np.full((300, 400), 90, np.uint8),  # single channel
    lambda: np.full((300, 400, 1), 90, np.uint8),
    lambda: np.full((6000, 4000, 3), 255, np.uint8),  # huge, blank
])
def test_awkward_images_give_results_not_crashes(full, make):
    assert full.detect(make()) == [] and full.detect_frame(make()) == []


def test_gray_and_sixteen_bit_portraits_still_found(tmp_path, full):
    gray = cv2.cvtColor(portrait(), cv2.COLOR_BGR2GRAY)
    assert len(full.detect(gray)) == 1
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), gray.astype(np.uint16) * 257)
    assert len(FaceRecognizer().predict(path)) == 1  # read_image makes it 8-bit


def test_recognizer_reports_keypoints_and_clips_boxes():
    faces = FaceRecognizer().predict(need(MEDIA / "obama_partial_face.jpg"))
    assert len(faces) == 1
    d = faces[0].to_dict()
    assert len(d["keypoints"]) == 6 and 0 < d["detector_score"] <= 1
    x, y, w, h = d["box"]
    assert x >= 0 and y >= 0  # the face runs off the left edge; the box stops there


def test_shipped_files_match_their_recorded_sha256():
    card = (WEIGHTS / "blazeface.md").read_text()
    for name in ("blazeface_full.onnx", "blazeface_short.onnx"):
        recorded = re.search(rf"{name}.*?([0-9a-f]{{64}})", card)
        assert recorded, f"blazeface.md records no sha256 for {name}"
        assert hashlib.sha256((WEIGHTS / name).read_bytes()).hexdigest() == recorded.group(1)


def test_corrupt_model_file_is_named(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(MODEL_FILES["full"].read_bytes()[:5000])
    with pytest.raises(ModelError, match="broken.onnx"):
        BlazeFaceDetector(str(bad))
    with pytest.raises(ModelError, match="not found"):
        BlazeFaceDetector(str(tmp_path / "missing.onnx"))


def test_other_onnx_files_are_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    # The face classifier is a valid ONNX file, but not a detector.
    with pytest.raises(ModelError, match="not a moodlens face detector"):
        BlazeFaceDetector(str(WEIGHTS / "face_resnet.onnx"))
    # A detector whose metadata claims the other model's anchors.
    model = onnx.load(str(MODEL_FILES["short"]))
    meta = json.loads(model.metadata_props[0].value)
    meta.update(input_size=192, anchor_grid=[[4, 1]])
    model.metadata_props[0].value = json.dumps(meta)
    lying = tmp_path / "lying.onnx"
    onnx.save(model, str(lying))
    with pytest.raises(ModelError, match="lying.onnx.*does not match"):
        BlazeFaceDetector(str(lying))


def test_detection_without_keypoints_has_no_tilt():
    assert Detection(Box(0, 0, 10, 10)).eye_angle() == 0.0

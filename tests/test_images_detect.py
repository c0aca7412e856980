"""Image decoding of awkward formats, and both detectors on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from moodlens.errors import InputError
from moodlens.face.detect import make_detector
from moodlens.images import expand_inputs, read_image

from conftest import MEDIA, need, needs_haar


@pytest.mark.parametrize("name, array", [
    ("gray.png", np.full((20, 30), 128, np.uint8)),
    ("rgba.png", np.dstack([np.full((20, 30, 3), 200, np.uint8), np.full((20, 30), 255, np.uint8)])),
    ("deep.png", np.full((20, 30), 40000, np.uint16)),
    ("deep_color.png", np.full((20, 30, 3), 65535, np.uint16)),
    ("photo.jpg", np.full((20, 30, 3), 90, np.uint8)),
])
def test_formats_become_bgr8(tmp_path, name, array):
    path = tmp_path / name
    assert cv2.imwrite(str(path), array)
    image = read_image(path)
    assert image.dtype == np.uint8 and image.shape == (20, 30, 3)


def test_sixteen_bit_keeps_brightness(tmp_path):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.full((4, 4), 40000, np.uint16))
    assert abs(int(read_image(path)[0, 0, 0]) - 40000 // 256) <= 1


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"this is text, not pixels", "not a readable image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not a readable image"),
])
def test_bad_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_image(path)
    assert message in str(err.value) and "bad.png" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="cannot read file"):
        read_image(tmp_path / "nope.jpg")


def test_expand_inputs_files_folders_globs(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/x.jpg", "a/y.PNG", "z.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    files, problems = expand_inputs([str(tmp_path / "a"), str(tmp_path / "*.jpg"), str(tmp_path / "empty"),
                                     str(tmp_path / "missing.jpg"), str(tmp_path / "*.gif")])
    assert sorted(f.name for f in files) == ["x.jpg", "y.PNG", "z.jpg"]
    assert len(problems) == 3
    assert any("folder holds no files" in p for p in problems)
    assert any("no such file" in p for p in problems)
    assert any("pattern matches no files" in p for p in problems)


def _iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def _annotations():
    import csv

    rows = list(csv.DictReader(open(need(MEDIA / "face_boxes.csv"))))
    out = {}
    for r in rows:
        out.setdefault(r["file"], []).append(tuple(int(r[k]) for k in ("left", "top", "width", "height")))
    return out


# Found with the defaults by benchmarks/detector_params.py: Haar 15/17, BlazeFace 17/17 (none on the dogs).
@pytest.mark.parametrize("spec, least", [pytest.param("haar", 14, marks=needs_haar), ("blazeface", 17)])
def test_detectors_find_annotated_faces(spec, least):
    det = make_detector(spec)
    found_total = truth_total = extra = 0
    for name, truth in _annotations().items():
        boxes = [d.box.to_list() for d in det.detect(read_image(MEDIA / name))]
        hits = sum(any(_iou(t, b) >= 0.4 for b in boxes) for t in truth)
        found_total, truth_total, extra = found_total + hits, truth_total + len(truth), extra + len(boxes) - hits
    assert truth_total == 17
    assert found_total >= least
    if spec == "blazeface":
        assert extra == 0 and det.detect(read_image(MEDIA / "dogs.jpg")) == []


@pytest.mark.parametrize("spec", [pytest.param("haar", marks=needs_haar), "blazeface"])
def test_huge_photo_boxes_in_original_coordinates(spec):
    image = read_image(need(MEDIA / "obama_small.jpg"))
    det = make_detector(spec)
    small = [d.box for d in det.detect(image)]
    huge = cv2.resize(image, None, fx=10, fy=10, interpolation=cv2.INTER_LINEAR)  # 3200x2400
    big = [d.box for d in det.detect(huge)]
    assert len(small) == 1 and len(big) == 1
    s, b = small[0], big[0]
    assert abs(b.x - 10 * s.x) < 0.1 * b.w and abs(b.w - 10 * s.w) < 0.15 * b.w


@pytest.mark.parametrize("spec", [pytest.param("haar", marks=needs_haar), "blazeface"])
def test_blank_image_has_no_face(spec):
    assert make_detector(spec).detect(np.full((300, 400, 3), 127, np.uint8)) == []


def test_unknown_detector_and_missing_yunet_file(tmp_path):
    from moodlens.errors import ModelError

    with pytest.raises(ModelError, match="unknown detector"):
        make_detector("mtcnn")
    with pytest.raises(ModelError, match="not found"):
        make_detector(f"yunet:{tmp_path / 'yunet.onnx'}")


@pytest.mark.skipif(hasattr(cv2, "CascadeClassifier"), reason="this OpenCV has Haar cascades")
def test_haar_without_cascades_says_what_to_install():
    from moodlens.errors import MissingExtraError

    with pytest.raises(MissingExtraError, match="opencv-contrib-python-headless"):
        make_detector("haar")

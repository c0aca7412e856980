"""`moodlens face` and FaceRecognizer end to end on real photos."""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest

import moodlens
from moodlens.cli import main
from moodlens.face.recognizer import crop_face, face_input
from moodlens.labels import FER_EMOTIONS
from moodlens.results import Box

from conftest import MEDIA, need


def run_cli(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_lines_for_group_photo(capsys, face_model):
    photo = need(MEDIA / "2008_002506.jpg")
    code, out, _ = run_cli(capsys, "face", str(photo), "--model", face_model, "--format", "json")
    assert code == 0
    faces = [json.loads(line) for line in out.splitlines()]
    assert len(faces) == 3
    for f in faces:
        assert f["status"] == "ok" and f["label"] in FER_EMOTIONS
        assert set(f["scores"]) == set(FER_EMOTIONS)
        assert abs(sum(f["scores"].values()) - 1) < 1e-2
        assert f["scores"][f["label"]] == max(f["scores"].values())
        x, y, w, h = f["box"]
        assert 0 <= x and 0 <= y and x + w <= 500 and y + h <= 375


def test_batch_goes_on_past_bad_files(tmp_path, capsys, face_model, media):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200), 128, np.uint8))
    code, out, err = run_cli(capsys, "face", str(broken), str(blank), str(media / "obama_small.jpg"),
                             "--model", face_model)
    assert code == 1  # some failed
    assert "broken.jpg: ERROR" in out and "not a readable image" in out
    assert "blank.png: no face found" in out
    assert "obama_small.jpg: 1 face" in out
    assert "1 of 3 inputs failed" in err


def test_csv_output_and_annotated_images(tmp_path, capsys, face_model, media):
    save = tmp_path / "annotated"
    code, out, _ = run_cli(capsys, "face", str(media / "obama_small.jpg"), "--model", face_model,
                           "--format", "csv", "--save-dir", str(save))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 and rows[0]["label"] in FER_EMOTIONS and rows[0]["status"] == "ok"
    written = cv2.imread(str(save / "obama_small_moodlens.jpg"))
    original = cv2.imread(str(media / "obama_small.jpg"))
    assert written.shape == original.shape
    assert np.abs(written.astype(int) - original).sum() > 0  # something was drawn
    assert not list(save.glob("*.part"))


def test_empty_folder_and_missing_path(tmp_path, capsys, face_model):
    code, _, err = run_cli(capsys, "face", str(tmp_path), str(tmp_path / "missing.jpg"), "--model", face_model)
    assert code == 2
    assert "folder holds no files" in err and "no such file" in err


def test_no_detect_classifies_crops(tmp_path, capsys, face_model):
    crop = tmp_path / "crop.png"
    cv2.imwrite(str(crop), np.random.default_rng(0).integers(0, 255, (48, 48), dtype=np.uint8))
    code, out, _ = run_cli(capsys, "face", str(crop), "--no-detect", "--model", face_model, "--format", "json")
    line = json.loads(out)
    assert code == 0 and line["box"] is None and line["label"] in FER_EMOTIONS


def test_unknown_model_lists_choices(capsys):
    code, _, err = run_cli(capsys, "face", "x.jpg", "--model", "nonexistent")
    assert code == 2 and "unknown model 'nonexistent'" in err and "default" in err


def test_model_of_wrong_kind(tmp_path, capsys):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not onnx")
    with pytest.raises(moodlens.ModelError, match="not a loadable ONNX model"):
        moodlens.FaceRecognizer(model=str(fake))


def test_python_api_on_arrays(face_model, media):
    rec = moodlens.FaceRecognizer(model=face_model)
    image = cv2.imread(str(media / "obama_small.jpg"))
    from_path = rec.predict(media / "obama_small.jpg")
    from_array = rec.predict(image)
    assert len(from_path) == 1
    assert from_path[0].box == from_array[0].box
    assert np.allclose(list(from_path[0].scores.values()), list(from_array[0].scores.values()), atol=1e-6)
    rgba = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    assert len(rec.predict(rgba)) == 1


def test_crop_at_the_edge_is_padded_square():
    gray = np.arange(100 * 80, dtype=np.uint32).reshape(100, 80).astype(np.uint8)
    crop = crop_face(gray, Box(-10, 70, 40, 40), scale=1.0)
    assert crop.shape == (40, 40)
    x = face_input([crop])
    assert x.shape == (1, 1, 48, 48) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1


def test_engine_options_are_checked_before_anything_runs(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["face", "x.jpg", "--engine", "spark"])
    assert exc.value.code == 2 and "invalid choice: 'spark' (choose from 'local', 'ray')" in capsys.readouterr().err
    code, _, err = run_cli(capsys, "face", "x.jpg", "--address", "auto")
    assert code == 2 and err == "error: --address and --workers are for --engine ray\n"
    code, _, err = run_cli(capsys, "face", "x.jpg", "--engine", "ray", "--workers", "0")
    assert code == 2 and "--workers 0: must be at least 1" in err


def test_save_dir_resumes_images_and_prints_the_same(tmp_path, capsys, face_model, media):
    blank = tmp_path / "in" / "blank.png"
    blank.parent.mkdir()
    cv2.imwrite(str(blank), np.full((100, 100), 90, np.uint8))
    (tmp_path / "in" / "obama_small.jpg").write_bytes((media / "obama_small.jpg").read_bytes())
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    args = ["face", str(tmp_path / "in"), "--model", face_model, "--save-dir", str(tmp_path / "out")]
    code, first, err = run_cli(capsys, *args, "--format", "csv")
    assert code == 1 and "already done" not in err
    sidecar = tmp_path / "out" / "obama_small_moodlens.json"
    mtime = sidecar.stat().st_mtime_ns
    code, again, err = run_cli(capsys, *args, "--format", "csv")
    assert code == 1 and again == first and "note: 2 images already done" in err
    assert sidecar.stat().st_mtime_ns == mtime
    # another model or --overwrite: done again
    code, _, err = run_cli(capsys, *args, "--overwrite")
    assert "already done" not in err and sidecar.stat().st_mtime_ns != mtime
    stored = json.loads(sidecar.read_text())
    assert stored["settings"]["detect"] is True and stored["settings"]["model"].startswith("sha256:")
    assert stored["result"]["source"] == str(tmp_path / "in" / "obama_small.jpg")


def test_jobs_split_many_images_over_processes_with_the_same_output(tmp_path, capsys, face_model, media):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = (media / "obama_small.jpg").read_bytes()
    for i in range(70):  # above the 64 that start worker processes; the last task is short
        (folder / f"p{i:02d}.jpg").write_bytes(photo if i % 7 else b"\xff\xd8\xff garbage")
    args = ["face", str(folder), "--model", face_model, "--format", "json"]
    code, one, _ = run_cli(capsys, *args, "--jobs", "1")
    code2, two, err = run_cli(capsys, *args, "--jobs", "2")
    assert code == code2 == 1 and "10 of 70 inputs failed" in err
    assert two == one and len(two.splitlines()) == 70

"""FER-2013 CSV, image folders, FER+ and CK+ recipes, and `moodlens prepare`."""

from __future__ import annotations

import gzip

import cv2
import numpy as np
import pytest

from moodlens.cli import main
from moodlens.data import load_ckplus, load_face_data, load_fer2013, load_ferplus, load_image_folder
from moodlens.errors import DataError
from moodlens.labels import FER_EMOTIONS

from conftest import FER_CSV, need, write_fer_csv


def test_csv_rows_labels_and_usage(fer_csv):
    data = load_fer2013(fer_csv)
    assert data.images.shape == (28, 48, 48) and data.images.dtype == np.uint8
    assert data.labels.tolist() == [i % 7 for i in range(28)]
    assert set(data.usage) == {"Training", "PublicTest"}
    assert len(data.split("PublicTest")) == 14


def test_gzip_csv_reads_the_same(tmp_path, fer_csv):
    gz = tmp_path / "fer.csv.gz"
    gz.write_bytes(gzip.compress(fer_csv.read_bytes()))
    a, b = load_fer2013(fer_csv), load_fer2013(gz)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)


def test_usage_filter_while_reading(fer_csv):
    assert set(load_fer2013(fer_csv, usage="Training").usage) == {"Training"}


@pytest.mark.parametrize("content, message", [
    ("label,pix\n1,2 3\n", "missing column(s) emotion, pixels"),
    ("emotion,pixels,Usage\n3," + " ".join(["1"] * 100) + ",Training\n", "line 2: pixels field has 100 values"),
    ("emotion,pixels,Usage\n3," + " ".join(["x"] * 2304) + ",Training\n", "line 2: pixels field holds a non-integer"),
    ("emotion,pixels,Usage\n9," + " ".join(["1"] * 2304) + ",Training\n", "line 2: emotion code 9 outside"),
    ("emotion,pixels,Usage\n3," + " ".join(["300"] * 2304) + ",Training\n", "line 2: pixel values must lie in 0..255"),
    ("emotion,pixels,Usage\n", "no data rows"),
    ("", "empty file"),
])
def test_bad_csv_names_file_and_row(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_fer2013(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_bad_row_in_the_middle_is_named(tmp_path, fer_csv):
    lines = fer_csv.read_text().splitlines()
    lines[5] = "2," + " ".join(["7"] * 2303) + ",Training"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines))
    with pytest.raises(DataError, match="line 6: pixels field has 2303 values"):
        load_fer2013(bad)


def test_corrupt_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "fer.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="cannot read"):
        load_fer2013(path)


def _write_folder_tree(root, per_class=2):
    for split in ("train", "test"):
        for label in ("angry", "happy", "Neutral"):
            d = root / split / label
            d.mkdir(parents=True)
            for i in range(per_class):
                cv2.imwrite(str(d / f"{i}.jpg"), np.full((48, 48), 40 * i + 10, np.uint8))
    (root / "train" / "happy" / "notes.txt").write_text("ignored")


def test_image_folder_variant(tmp_path):
    _write_folder_tree(tmp_path)
    data = load_image_folder(tmp_path)
    assert len(data) == 12
    assert sorted(set(data.usage)) == ["PublicTest", "Training"]
    names = [FER_EMOTIONS[i] for i in data.labels]
    assert names.count("happy") == 4 and names.count("neutral") == 4
    assert load_face_data(tmp_path).images.shape == (12, 48, 48)


def test_image_folder_resizes_and_skips_unreadable(tmp_path):
    d = tmp_path / "train" / "sad"
    d.mkdir(parents=True)
    cv2.imwrite(str(d / "big.png"), np.zeros((96, 96, 3), np.uint8))
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    data = load_image_folder(tmp_path)
    assert data.images.shape == (1, 48, 48)
    assert any("broken.jpg" in msg for msg in data.skipped)


def test_unknown_class_folder_is_named(tmp_path):
    (tmp_path / "train" / "sleepy").mkdir(parents=True)
    with pytest.raises(DataError, match="sleepy: unknown class folder"):
        load_image_folder(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(tmp_path)


def test_ckplus_layout_maps_to_canonical(tmp_path):
    for folder in ("anger", "contempt", "sadness"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "S010_004_00000017.png"), np.zeros((48, 48), np.uint8))
    data = load_ckplus(tmp_path)
    assert sorted(data.label_names[i] for i in data.labels) == ["angry", "contempt", "sad"]


def test_ferplus_majority_and_soft_labels(tmp_path, fer_csv):
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    usages = [("Training", "PublicTest")[i % 2] for i in range(28)]
    rows = []
    for i, usage in enumerate(usages):
        if i == 0:
            votes = "0,0,0,0,0,0,0,0,2,8"  # not a face -> dropped
        elif i == 1:
            votes = "5,5,0,0,0,0,0,0,0,0"  # tie -> dropped
        elif i == 2:
            votes = "1,7,2,0,0,0,0,0,0,0"  # happy, soft 0.1/0.7/0.2
        else:
            votes = "0,0,0,0,0,0,0,9,1,0"  # contempt
        rows.append(f"{usage},fer{i:07d}.png,{votes}")
    plus = tmp_path / "fer2013new.csv"
    plus.write_text(header + "\n" + "\n".join(rows) + "\n")
    data = load_ferplus(fer_csv, plus)
    assert len(data) == 26
    assert data.label_names[data.labels[0]] == "happy"
    assert np.allclose(data.soft[0][:3], [0.1, 0.7, 0.2])
    assert "contempt" in data.label_names


def test_ferplus_misaligned_files(tmp_path, fer_csv):
    plus = tmp_path / "fer2013new.csv"
    plus.write_text("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
                    "Training,a.png,1,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(DataError, match="row for row"):
        load_ferplus(fer_csv, plus)


def test_prepare_writes_pngs_and_cache(tmp_path, fer_csv, capsys):
    out = tmp_path / "prepared"
    assert main(["prepare", "fer2013", str(fer_csv), str(out)]) == 0
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) == 28
    first = cv2.imread(str(out / "Training" / "angry" / "00000.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(first, load_fer2013(fer_csv).images[0])  # lossless
    cached = load_face_data(out / "fer2013.npz")
    assert len(cached) == 28 and set(cached.usage) == {"Training", "PublicTest"}
    assert "Training: 14 images" in capsys.readouterr().out


def test_shared_fer2013_counts():
    data = load_fer2013(need(FER_CSV), usage="PublicTest")
    assert data.class_counts().tolist() == [467, 56, 496, 895, 653, 415, 607]

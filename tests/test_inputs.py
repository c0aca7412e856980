"""The inputs people have: files known by their content, GIFs, phone photos
turned by EXIF, HEIC, folder scans that say what they skipped, and no codec
chatter on the terminal."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from moodlens.errors import InputError
from moodlens.face.recognizer import FaceRecognizer
from moodlens.images import decode_image, expand_inputs, image_kind, is_animated_gif, looks_like_image, read_image

from conftest import MEDIA, need

Image = pytest.importorskip("PIL.Image")


def portrait() -> np.ndarray:
    return read_image(need(MEDIA / "obama_small.jpg"))


def save_pil(array_bgr: np.ndarray, path, fmt: str, **options) -> None:
    Image.fromarray(cv2.cvtColor(array_bgr, cv2.COLOR_BGR2RGB)).save(path, format=fmt, **options)


def test_extensionless_gifs_in_a_folder_are_found_and_read(tmp_path):
    # Yale's face database: GIFs named subject01.happy, subject01.sad, ...
    save_pil(portrait(), tmp_path / "subject01.happy", "GIF")
    save_pil(portrait(), tmp_path / "subject02", "GIF")
    (tmp_path / "Readme").write_text("Yale faces, 15 subjects")
    skipped: list[str] = []
    files, problems = expand_inputs([str(tmp_path)], sniff=looks_like_image, skipped=skipped)
    assert sorted(f.name for f in files) == ["subject01.happy", "subject02"] and problems == []
    assert skipped == [f"{tmp_path}: skipped 1 file that is not an image (no extension)"]
    faces = FaceRecognizer().predict(files[0])
    assert len(faces) == 1


def test_png_named_jpg_is_read_by_its_content(tmp_path):
    path = tmp_path / "photo.jpg"
    assert cv2.imwrite(str(tmp_path / "x.png"), portrait())
    (tmp_path / "x.png").rename(path)
    assert image_kind(path.read_bytes()[:32]) == "png"
    assert len(FaceRecognizer().predict(path)) == 1


def test_exif_orientation_turns_a_phone_portrait_upright(tmp_path):
    upright = portrait()
    h, w = upright.shape[:2]
    # A phone stores the pixels sideways and an EXIF tag saying "turn 90 degrees clockwise" (6).
    sideways = np.ascontiguousarray(np.rot90(upright, k=1))
    image = Image.fromarray(cv2.cvtColor(sideways, cv2.COLOR_BGR2RGB))
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif.tobytes(), quality=95)
    decoded = read_image(path)
    assert decoded.shape[:2] == (h, w)
    faces = FaceRecognizer().predict(path)
    assert len(faces) == 1 and abs(faces[0].box.w - FaceRecognizer().predict(upright)[0].box.w) < 0.1 * w


def test_animated_gif_is_a_video_and_a_still_gif_is_not(tmp_path):
    frames = [Image.fromarray(np.full((60, 80, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(tmp_path / "still.gif")
    assert is_animated_gif(tmp_path / "anim.gif") and not is_animated_gif(tmp_path / "still.gif")
    assert read_image(tmp_path / "anim.gif").shape == (60, 80, 3)  # as an image: its first frame


def test_heic_without_its_reader_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # import fails as when it is not installed
    fake = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40
    with pytest.raises(InputError, match=r"IMG_0001.HEIC: HEIC/HEIF photo.*moodlens\[heic\]"):
        decode_image(fake, "IMG_0001.HEIC")


@pytest.mark.parametrize("head, kind", [
    (b"\xff\xd8\xff\xe0", "jpeg"), (b"GIF89a", "gif"), (b"II*\x00", "tiff"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
    (b"BM" + b"\x00" * 12 + b"\x28\x00\x00\x00", "bmp"), (b"P5\n48 48\n255\n", "pnm"),
    (b"BMW is a car", None), (b"PK\x03\x04", None), (b"", None),
])
def test_image_kind_by_signature(head, kind):
    assert image_kind(head) == kind


def test_corrupt_files_leave_only_our_message_on_stderr(tmp_path):
    ok, png = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = bytearray(png.tobytes())
    data[100:140] = b"\x00" * 40  # breaks the IDAT chunk's CRC: libpng prints "libpng error: ..."
    (tmp_path / "crc.png").write_bytes(bytes(data))
    (tmp_path / "short.png").write_bytes(png.tobytes()[:120])  # OpenCV warns "[ WARN:0@...] ... incomplete"
    done = subprocess.run([sys.executable, "-m", "moodlens", "face", str(tmp_path / "crc.png"),
                           str(tmp_path / "short.png")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "libpng" not in done.stderr and "WARN" not in done.stderr, done.stderr
    assert "crc.png: not a readable image" in done.stdout + done.stderr
    assert "short.png: not a readable image" in done.stdout + done.stderr

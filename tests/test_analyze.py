"""`moodlens analyze` and ``Analyzer``: face + voice fused from an image and a
clip, or from a video (with and without an audio track), on the real shared data."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from moodlens.analyze import Analyzer
from moodlens.cli import main

from conftest import ANGRY_CLIP, FACE_VIDEO, MEDIA, need


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main(["analyze", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def analyze_json(capsys, *args) -> tuple[int, dict, str]:
    code, out, err = run_cli(capsys, *args, "--json")
    return code, json.loads(out), err


@pytest.fixture()
def gray_png(tmp_path):
    path = tmp_path / "gray.png"
    cv2.imwrite(str(path), np.full((240, 320, 3), 128, np.uint8))
    return path


def mux_video_with_audio(path, video, audio, seconds: float = 3.0, size=(480, 270), fps: int = 25):
    """An MP4 of the first ``seconds`` of ``video`` (resized) with ``audio`` as an AAC track."""
    av = pytest.importorskip("av")
    import soundfile as sf

    samples, rate = sf.read(str(audio), dtype="int16")
    samples = samples[: int(seconds * rate)]
    cap = cv2.VideoCapture(str(video))
    with av.open(str(path), "w") as box:
        v = box.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = size[0], size[1], "yuv420p"
        a = box.add_stream("aac", rate=rate, layout="mono")
        for _ in range(int(seconds * fps)):
            ok, image = cap.read()
            assert ok
            box.mux(v.encode(av.VideoFrame.from_ndarray(cv2.resize(image, size), format="bgr24")))
        box.mux(v.encode())
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        box.mux(a.encode(frame))
        box.mux(a.encode())
    cap.release()
    return path


# --- image + audio ----------------------------------------------------------------

def test_image_and_audio_give_both_modalities_and_a_fused_label(capsys):
    image, audio = need(MEDIA / "two_people.jpg"), need(ANGRY_CLIP)
    code, r, err = analyze_json(capsys, "--image", image, "--audio", audio)
    assert code == 0 and err == ""
    assert r["status"] == "ok" and r["errors"] == {}
    assert r["source"] == {"image": str(image), "audio": str(audio)}
    assert r["face"]["faces"] == 2 and len(r["face"]["box"]) == 4
    assert r["voice"]["label"] == "angry" and r["voice"]["status"] == "ok"
    fused = r["fused"]
    assert fused["modalities"] == ["face", "voice"]
    assert fused["label"] in fused["scores"] and "calm" not in fused["scores"]
    assert sum(fused["scores"].values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(fused["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert fused["notes"] == []


def test_the_largest_face_is_the_one_fused(capsys):
    code, r, _ = analyze_json(capsys, "--image", need(MEDIA / "two_people.jpg"))
    assert code == 0
    from moodlens.face.recognizer import FaceRecognizer

    faces = FaceRecognizer().predict(MEDIA / "two_people.jpg")
    biggest = max(faces, key=lambda f: f.box.w * f.box.h)
    assert r["face"]["box"] == biggest.box.to_list()
    assert r["fused"]["label"] == biggest.label
    assert r["voice"] is None


def test_a_missing_audio_file_fails_the_voice_and_keeps_the_face(tmp_path, capsys):
    missing = tmp_path / "nope.flac"
    code, r, err = analyze_json(capsys, "--image", need(MEDIA / "two_people.jpg"), "--audio", missing)
    assert code == 1
    assert r["voice"] is None and r["face"] is not None
    assert r["fused"]["modalities"] == ["face"]
    assert r["fused"]["label"] == r["face"]["label"]
    assert str(missing) in r["errors"]["voice"]
    [note] = r["fused"]["notes"]
    assert note.startswith("voice failed") and str(missing) in note
    assert str(missing) in err  # also on stderr


def test_an_image_without_a_face_leaves_the_voice_alone(capsys, gray_png):
    code, r, _ = analyze_json(capsys, "--image", gray_png, "--audio", need(ANGRY_CLIP))
    assert code == 0
    assert r["face"] is None and r["errors"] == {}
    assert r["fused"]["modalities"] == ["voice"]
    assert r["fused"]["label"] == r["voice"]["label"] == "angry"
    assert r["fused"]["notes"] == [f"face missing: no face found in {gray_png}"]


def test_nothing_usable_exits_1_with_no_label(tmp_path, capsys, gray_png):
    code, r, _ = analyze_json(capsys, "--image", gray_png, "--audio", tmp_path / "nope.wav")
    assert code == 1
    assert r["status"] == "error" and r["fused"]["label"] is None
    assert set(r["errors"]) == {"voice"}


def test_text_output_names_fused_face_and_voice(capsys):
    code, out, _ = run_cli(capsys, "--image", need(MEDIA / "two_people.jpg"), "--audio", need(ANGRY_CLIP))
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["fused", "face", "voice"]
    assert "weights face" in lines[0] and "voice" in lines[0]
    assert "2 face(s)" in lines[1]
    assert lines[2].split()[1] == "angry"


def test_text_output_says_why_a_modality_is_missing(tmp_path, capsys, gray_png):
    missing = tmp_path / "nope.flac"
    code, out, _ = run_cli(capsys, "--image", gray_png, "--audio", missing)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("fused") and "no result" in lines[0]
    assert lines[1].startswith("face") and "no result (see notes)" in lines[1]
    assert lines[2].startswith("voice") and str(missing) in lines[2]
    assert f"note: face missing: no face found in {gray_png}" in lines


@pytest.mark.parametrize("args, phrase", [
    (["--video", "v.mp4", "--image", "x.jpg"], "give --video alone"),
    (["--video", "v.mp4", "--audio", "x.wav"], "give --video alone"),
    ([], "nothing to analyze"),
    (["--image", "x.jpg", "--face-weight", "0", "--voice-weight", "0"], "cannot both be 0"),
    (["--image", "x.jpg", "--voice-weight", "-1"], "voice_weight must be a number >= 0"),
])
def test_usage_errors_exit_2(capsys, args, phrase):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert out == ""
    assert phrase in err


# --- video ------------------------------------------------------------------------

def test_video_without_an_audio_track_gives_the_face_and_a_note(capsys):
    video = need(FACE_VIDEO)
    code, r, _ = analyze_json(capsys, "--video", video)
    assert code == 0
    assert r["source"] == {"video": str(video)}
    assert r["face"]["label"] == "happy" and r["face"]["frames_with_face"] > 10
    assert r["voice"] is None and r["errors"] == {}
    assert r["fused"]["modalities"] == ["face"] and r["fused"]["label"] == "happy"
    assert r["fused"]["notes"] == [f"voice missing: {video} has no audio track"]
    assert r["timeline"] == []


def test_video_with_an_audio_track_gives_both_and_a_timeline(tmp_path, analyzer):
    video = mux_video_with_audio(tmp_path / "talking.mp4", need(FACE_VIDEO), need(ANGRY_CLIP))
    r = analyzer.analyze_video(video)
    assert r.ok and r.errors == {}
    assert r.face["label"] == "happy" and r.face["frames_with_face"] >= 10
    assert 0 <= r.face["first_s"] < r.face["last_s"] <= 3.0
    assert r.voice["label"] == "angry"
    assert r.voice["duration"] == pytest.approx(3.0, abs=0.15)
    assert r.fused.modalities == ["face", "voice"] and r.fused.notes == []
    assert r.timeline, "a video with sound gets a timeline"
    for row in r.timeline:
        assert 0 <= row["start"] < row["end"] <= r.voice["duration"] + 0.01
        assert row["modalities"] == ["face", "voice"]
        assert row["label"] in r.fused.scores


def test_a_missing_video_fails_both_modalities(tmp_path, capsys):
    missing = tmp_path / "gone.mp4"
    code, r, _ = analyze_json(capsys, "--video", missing)
    assert code == 1
    assert set(r["errors"]) == {"face", "voice"}
    assert all(str(missing) in why for why in r["errors"].values())
    assert r["fused"]["label"] is None


# --- the Python API -------------------------------------------------------------

def test_arrays_are_accepted_and_nothing_at_all_is_a_value_error(analyzer):
    import soundfile as sf

    image = cv2.imread(str(need(MEDIA / "two_people.jpg")))
    samples, rate = sf.read(str(need(ANGRY_CLIP)), dtype="float32")
    r = analyzer.analyze(image=image, audio=samples, sample_rate=rate)
    assert r.source == {"image": "<array>", "audio": "<array>"}
    assert r.fused.modalities == ["face", "voice"]
    assert r.voice["label"] == "angry"
    with pytest.raises(ValueError, match="give an image, an audio clip, or both"):
        analyzer.analyze()


def test_failed_inputs_from_the_caller_are_reported(analyzer):
    r = analyzer.analyze(image=need(MEDIA / "two_people.jpg"), failed={"voice": "upload: empty (0 bytes)"})
    assert r.errors == {"voice": "upload: empty (0 bytes)"}
    assert r.fused.notes == ["voice failed (upload: empty (0 bytes))"]
    assert r.fused.modalities == ["face"]


def test_an_extreme_aspect_ratio_image_is_a_face_missing_note(analyzer):
    r = analyzer.analyze(image=np.zeros((2, 20000, 3), np.uint8), audio=None)
    assert r.face is None
    assert r.fused.notes[0].startswith("face missing")

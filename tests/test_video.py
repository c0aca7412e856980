"""Video: frame sources, tracking and smoothing, outputs, batch resume, Ctrl+C,
bad input, and the real shared face video end to end.

Clips are made here with OpenCV from the shared face video: a small face clip
(its first frames at 320x180) and a no-face clip (the bookshelves beside her).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodlens.cli import main
from moodlens.errors import InputError, MissingExtraError
from moodlens.face.recognizer import FaceRecognizer
from moodlens.video import OutputPaths, VideoFileSource, VideoOptions, VideoProcessor
from moodlens.video import pipeline as pipeline_mod
from moodlens.video import report as report_mod
from moodlens.video.batch import complete_summary, output_stems
from moodlens.video.outputs import VideoSink, have_pyav
from moodlens.video.sources import Frame, FolderSource
from moodlens.video.tracking import ScoreSmoother, Tracker, TrackerOptions, iou

from conftest import MEDIA, need

FACE_VIDEO = MEDIA / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"
CLIP_FRAMES = 24


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 25, fourcc: str = "mp4v") -> Path:
    h, w = frames[0].shape[:2] if frames else (180, 320)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def shared_frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(need(FACE_VIDEO)))
    frames = [cap.read()[1] for _ in range(CLIP_FRAMES)]
    cap.release()
    return frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory, shared_frames) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    face = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in shared_frames]
    shelves = [cv2.resize(f[:, 860:], (210, 360), interpolation=cv2.INTER_AREA) for f in shared_frames[:10]]
    return {"face": write_clip(d / "face.mp4", face), "noface": write_clip(d / "shelves.mp4", shelves),
            "face_avi": write_clip(d / "face.avi", face, fourcc="MJPG")}


@pytest.fixture(scope="module")
def recognizer(face_model) -> FaceRecognizer:
    return FaceRecognizer(model=face_model)


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def read_timeline(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def count_frames(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


# ---- tracking and smoothing ------------------------------------------------------------------


@pytest.mark.parametrize("mode, max_changes", [("ema", 0), ("window", 0), ("off", 39)])
def test_smoothing_stops_label_flicker(mode, max_changes):
    # two emotions trading the lead every frame, the first slightly ahead on average
    sm = ScoreSmoother(mode, alpha=0.3, window=6)
    labels = []
    for i in range(40):
        lead = 0.56 if i % 2 == 0 else 0.43
        sm.update(np.array([lead, 0.97 - lead, 0.03]))
        labels.append(sm.label_index)
    changes = sum(a != b for a, b in zip(labels, labels[1:]))
    assert changes == max_changes
    assert labels[-1] == (1 if mode == "off" else 0)


def test_smoother_follows_a_real_change():
    sm = ScoreSmoother("ema", alpha=0.3)
    for _ in range(10):
        sm.update(np.array([0.9, 0.1]))
    steps = 0
    while sm.label_index != 1:
        sm.update(np.array([0.1, 0.9]))
        steps += 1
    assert 2 <= steps <= 6  # a lasting change shows within a fraction of a second, not on the first frame


@pytest.mark.parametrize("kwargs", [{"mode": "median"}, {"alpha": 0.0}, {"alpha": 1.5}, {"window": 0}])
def test_smoother_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError):
        ScoreSmoother(**kwargs)


def test_tracker_keeps_ids_through_short_misses_and_filters_one_offs():
    rng = np.random.default_rng(0)
    noise = lambda: rng.integers(0, 255, (200, 300), dtype=np.uint8)  # nothing to follow: misses are real
    tr = Tracker(TrackerOptions(iou=0.3, max_missed_s=0.5, min_hits=2))
    a, b = [10, 10, 50, 50], [200, 100, 60, 60]
    tr.update([a, b], noise(), 0.0)
    assert tr.shown() == []  # tentative until seen twice
    tr.update([[12, 11, 50, 50], b], noise(), 0.1)
    assert [t.id for t in tr.shown()] == [1, 2]  # ids in order of appearance
    tr.update([b, [120, 20, 30, 30]], noise(), 0.2)  # face a missed once; a one-off appears
    assert [t.id for t in tr.shown()] == [2]
    tr.update([[14, 12, 50, 50], b], noise(), 0.3)  # a is back within max_missed_s: same id
    assert sorted(t.id for t in tr.shown()) == [1, 2]
    assert len(tr.tracks) == 2  # the one-off was dropped, not kept as a track
    tr.update([b], noise(), 1.0)  # a gone longer than max_missed_s
    tr.update([[14, 12, 50, 50], b], noise(), 1.1)
    tr.update([[14, 12, 50, 50], b], noise(), 1.2)
    assert sorted(t.id for t in tr.shown()) == [2, 3]
    assert iou(a, a) == 1.0 and iou(a, b) == 0.0


def test_faces_are_followed_between_detections(recognizer, media):
    face = cv2.imread(str(media / "obama_small.jpg"))
    h, w = face.shape[:2]
    proc = VideoProcessor(recognizer, VideoOptions(every=4, detect_width=0, min_hits=1))
    boxes, detected = [], []
    for i in range(12):  # the photo slides right 6 px a frame over a gray background
        frame = np.full((h + 40, w + 120, 3), 90, np.uint8)
        frame[20:20 + h, 6 * i:6 * i + w] = face
        faces = proc.step(Frame(i, i / 25, frame))
        assert len(faces) == 1 and faces[0].track == 1
        boxes.append(faces[0].box.x)
        detected.append(faces[0].detected)
    assert detected == [i % 4 == 0 for i in range(12)]
    steps = np.diff(boxes)
    assert np.all(np.abs(steps - 6) <= 4), boxes  # followed frames move with the face
    assert abs(boxes[-1] - boxes[0] - 66) <= 6, boxes


def test_detection_interval_follows_the_detector():
    fast, slow = type("Fast", (), {"fast": True})(), type("Slow", (), {"fast": False})()
    assert VideoOptions().detection_interval(fast) == 1  # BlazeFace: every frame
    assert VideoOptions().detection_interval(slow) == 3  # Haar: every 3rd, followed in between
    assert VideoOptions.live().detection_interval(slow) == 8
    assert VideoOptions(every=5).detection_interval(fast) == 5  # --every wins
    with pytest.raises(ValueError, match="slow_every"):
        VideoOptions(slow_every=0)


def test_tilted_face_in_video_is_aligned_from_its_track(recognizer, media):
    face = cv2.imread(str(media / "obama_small.jpg"))
    big = cv2.copyMakeBorder(face, 80, 80, 80, 80, cv2.BORDER_REPLICATE)
    c = (big.shape[1] / 2, big.shape[0] / 2)
    tilted = cv2.warpAffine(big, cv2.getRotationMatrix2D(c, -25, 1.0), big.shape[1::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    proc = VideoProcessor(recognizer, VideoOptions(detect_width=0, min_hits=1))
    proc.step(Frame(0, 0.0, tilted))
    (track,) = proc.tracker.shown()
    assert track.angle == pytest.approx(25, abs=8)  # the crop is levelled by this much


# ---- files end to end ------------------------------------------------------------------------


def test_shared_face_video_end_to_end(tmp_path, capsys, face_model):
    video = need(FACE_VIDEO)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "face", video, "--model", face_model, "--save-dir", out)
    assert code == 0, stdout
    stem = video.stem
    summary = json.loads((out / f"{stem}_summary.json").read_text())
    assert summary["complete"] and not summary["interrupted"] and summary["frames"] == 146
    assert [t["track"] for t in summary["tracks"]] == [1]
    rows = read_timeline(out / f"{stem}_timeline.jsonl")
    assert sorted({r["frame"] for r in rows}) == list(range(146))  # every frame has a row
    assert {r["track"] for r in rows} <= {1, None}  # one id through the clip
    shown = [r for r in rows if r["track"] == 1]
    assert len(shown) >= 140
    assert all(abs(sum(r["scores"].values()) - 1) < 0.01 and r["label"] in r["scores"] for r in shown)
    assert count_frames(out / f"{stem}_moodlens.mp4") == 146
    assert cv2.imread(str(out / f"{stem}_scores.png")) is not None
    assert "1 track" in stdout and "track 1" in stdout
    assert not list(out.glob(".*part*"))


def test_csv_timeline_and_summary_rows(tmp_path, capsys, face_model, clips):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "face", clips["face"], "--model", face_model, "--save-dir", out,
                              "--format", "csv", "--no-plot", "--smooth", "window")
    assert code == 0
    summary_rows = list(csv.DictReader(stdout.splitlines()))
    assert len(summary_rows) == 1 and summary_rows[0]["track"] == "1" and summary_rows[0]["status"] == "ok"
    with open(out / "face_timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["frame"] for r in rows} == {str(i) for i in range(CLIP_FRAMES)}
    assert {r["track"] for r in rows} <= {"1", ""}
    assert not (out / "face_scores.png").exists()


def test_no_save_dir_writes_nothing_and_prints_json(tmp_path, capsys, face_model, clips, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = run_cli(capsys, "face", clips["face"], "--model", face_model, "--format", "json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["frames"] == CLIP_FRAMES and len(summary["tracks"]) == 1 and summary["outputs"] == {}
    assert list(tmp_path.iterdir()) == []


def test_video_without_faces(tmp_path, capsys, face_model, clips):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "face", clips["noface"], "--model", face_model, "--save-dir", out)
    assert code == 0
    assert "no face found" in stdout
    summary = json.loads((out / "shelves_summary.json").read_text())
    assert summary["tracks"] == [] and summary["complete"]
    assert all(r["track"] is None for r in read_timeline(out / "shelves_timeline.jsonl"))
    assert count_frames(out / "shelves_moodlens.mp4") == 10
    assert not (out / "shelves_scores.png").exists() and "no plot written" in stdout


def test_folder_of_frames(tmp_path, capsys, face_model, shared_frames):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(shared_frames[:12]):
        cv2.imwrite(str(frames / f"f{i}.png"), cv2.resize(f, (320, 180)))
    (frames / "f12.png").write_bytes(b"not a png")  # skipped with a warning
    src = FolderSource(frames)
    assert [p.name for p in src.files][:3] == ["f0.png", "f1.png", "f2.png"]  # natural order
    src.close()
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "face", frames, "--frames", "--fps", 10, "--model", face_model,
                              "--save-dir", out, "--no-plot")
    assert code == 0
    summary = json.loads((out / "frames_summary.json").read_text())
    assert summary["frames"] == 12 and summary["fps"] == 10 and len(summary["tracks"]) == 1
    assert any("f12.png" in w for w in summary["warnings"])
    assert count_frames(out / "frames_moodlens.mp4") == 12


# ---- bad input -------------------------------------------------------------------------------


def _bad_inputs(tmp: Path, clips: dict[str, Path]) -> dict[str, tuple[Path, str]]:
    text = tmp / "notes.mp4"
    text.write_text("this is not a video\n")
    empty = tmp / "empty.mov"
    empty.write_bytes(b"")
    zero_mp4 = write_clip(tmp / "zero.mp4", [])
    zero_avi = write_clip(tmp / "zero.avi", [], fourcc="MJPG")
    data = clips["face"].read_bytes()
    cut = tmp / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: nothing decodable
    return {"text": (text, "not a readable video"), "empty": (empty, "empty file"),
            "zero_mp4": (zero_mp4, "not a readable video"), "zero_avi": (zero_avi, "holds no frames"),
            "cut_mp4": (cut, "not a readable video")}


def test_bad_videos_are_reported_and_leave_no_outputs(tmp_path, capsys, face_model, clips):
    bad = _bad_inputs(tmp_path, clips)
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "face", *(p for p, _ in bad.values()), clips["face"], "--model",
                                face_model, "--save-dir", out, "--jobs", 1, "--no-plot")
    assert code == 1
    for path, message in bad.values():
        line = next(l for l in stdout.splitlines() if l.startswith(str(path)))
        assert "ERROR" in line and message in line, line
    assert f"{len(bad)} of {len(bad) + 1} videos failed" in err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["face_moodlens.mp4", "face_summary.json", "face_timeline.jsonl"]  # only the good clip's


@pytest.mark.parametrize("kind", ["text", "zero_avi", "cut_mp4"])
def test_bad_video_errors_from_the_api(tmp_path, clips, kind):
    path, message = _bad_inputs(tmp_path, clips)[kind]
    with pytest.raises(InputError, match=message) as info:
        VideoFileSource(path)
    assert str(path) in str(info.value)


def test_truncated_avi_keeps_what_decodes_and_says_so(tmp_path, capsys, face_model, clips):
    data = clips["face_avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])  # AVI frames come before the index: half of them decode
    out = tmp_path / "out"
    code, stdout, err = run_cli(capsys, "face", cut, "--model", face_model, "--save-dir", out, "--no-plot")
    assert code == 1 and "truncated" in stdout
    summary = json.loads((out / "cut_summary.json").read_text())
    assert summary["truncated"] and 0 < summary["frames"] < CLIP_FRAMES
    assert count_frames(out / "cut_moodlens.mp4") == summary["frames"]


def test_bad_options_exit_2(capsys, face_model, clips):
    code, _, err = run_cli(capsys, "face", clips["face"], "--model", face_model, "--every", 0)
    assert code == 2 and "--every must be >= 1" in err


# ---- Ctrl+C and resume -----------------------------------------------------------------------


def _interrupt_at(monkeypatch, n: int, how: str):
    """Make VideoProcessor.step raise KeyboardInterrupt (or send SIGINT) on call ``n``."""
    real = VideoProcessor.step
    calls = {"n": 0}

    def step(self, frame, name=""):
        calls["n"] += 1
        if calls["n"] == n:
            if how == "raise":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl+C: the frame still completes
        return real(self, frame, name)

    monkeypatch.setattr(pipeline_mod.VideoProcessor, "step", step)


@pytest.mark.parametrize("how, frames", [("raise", 9), ("signal", 10)])
def test_ctrl_c_leaves_valid_outputs_then_resume_redoes_it(tmp_path, capsys, face_model, clips, monkeypatch,
                                                          how, frames):
    out = tmp_path / "out"
    _interrupt_at(monkeypatch, 10, how)
    code, stdout, err = run_cli(capsys, "face", clips["face"], "--model", face_model, "--save-dir", out)
    assert code == 130 and "(interrupted)" in stdout and "run again to resume" in err
    summary = json.loads((out / "face_summary.json").read_text())
    assert summary["interrupted"] and summary["complete"] is False and summary["frames"] == frames
    assert count_frames(out / "face_moodlens.mp4") == frames  # finalised: OpenCV reads it back
    rows = read_timeline(out / "face_timeline.jsonl")
    assert sorted({r["frame"] for r in rows}) == list(range(frames))
    assert not list(out.glob(".*part*"))
    assert complete_summary(OutputPaths.for_stem(out, "face")) is None

    monkeypatch.undo()
    code, stdout, _ = run_cli(capsys, "face", clips["face"], "--model", face_model, "--save-dir", out)
    assert code == 0 and "already complete" not in stdout
    assert json.loads((out / "face_summary.json").read_text())["frames"] == CLIP_FRAMES


def test_batch_of_videos_uses_processes_and_resumes(tmp_path, capsys, face_model, clips):
    folder = tmp_path / "videos"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4", "sub/c.avi"):
        (folder / name).write_bytes(clips["face"].read_bytes() if name.endswith("mp4") else clips["face_avi"].read_bytes())
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "face", folder, "--model", face_model, "--save-dir", out, "--jobs", 2,
                              "--no-plot", "--format", "json")
    assert code == 0
    first = [json.loads(l) for l in stdout.splitlines()]
    assert sorted(Path(s["source"]).name for s in first) == ["a.mp4", "b.mp4", "c.avi"]
    assert all(s["complete"] and len(s["tracks"]) == 1 for s in first)

    # b's run "died" before its summary was written; a's was interrupted: both are redone
    (out / "b_summary.json").unlink()
    a = json.loads((out / "a_summary.json").read_text())
    (out / "a_summary.json").write_text(json.dumps({**a, "complete": False, "interrupted": True}))
    c_mtime = (out / "c_summary.json").stat().st_mtime_ns
    code, stdout, _ = run_cli(capsys, "face", folder, "--model", face_model, "--save-dir", out, "--jobs", 1,
                              "--no-plot", "--format", "json")
    assert code == 0
    second = {Path(s["source"]).name: s for s in map(json.loads, stdout.splitlines())}
    assert second["c.avi"].get("skipped") and not second["a.mp4"].get("skipped") and not second["b.mp4"].get("skipped")
    assert (out / "c_summary.json").stat().st_mtime_ns == c_mtime
    assert json.loads((out / "a_summary.json").read_text())["complete"]


def test_output_stems_are_unique():
    stems = output_stems([Path("/x/a/clip.mp4"), Path("/x/b/clip.mp4"), Path("/x/b/other.avi")])
    assert len(set(stems)) == 3 and stems[2] == "other"


# ---- live ------------------------------------------------------------------------------------


def test_camera_that_cannot_be_opened(capsys, face_model):
    code, _, err = run_cli(capsys, "live", "--camera", 97, "--no-display", "--model", face_model)
    assert code == 2 and "camera 97: cannot be opened" in err


class FakeCamera:
    """A clip played in a loop at about camera pace, standing in for a webcam."""

    def __init__(self, clip: Path, real):
        self.clip, self.real = str(clip), real
        self.cap = real(self.clip)

    def isOpened(self):
        return True

    def set(self, *args):
        return False

    def get(self, prop):
        return self.cap.get(prop)

    def read(self):
        time.sleep(0.02)
        ok, image = self.cap.read()
        if not ok:
            self.cap = self.real(self.clip)
            ok, image = self.cap.read()
        return ok, image

    def release(self):
        self.cap.release()


def _fake_camera(monkeypatch, clip: Path):
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture",
                        lambda src, *a: FakeCamera(clip, real) if isinstance(src, int) else real(src, *a))


def test_live_headless_streams_timeline_to_stdout(capsys, face_model, clips, monkeypatch):
    _fake_camera(monkeypatch, clips["face"])
    code, stdout, err = run_cli(capsys, "live", "--no-display", "--model", face_model, "--max-frames", 15)
    assert code == 0
    rows = [json.loads(l) for l in stdout.splitlines()]
    assert {r["frame"] for r in rows} == set(range(15))
    assert all(r["track"] in (None, 1) for r in rows)
    assert "camera 0:" in err  # the summary goes to stderr when stdout carries the timeline


LIVE_POLICY = """\
version: 1
dwell_seconds: 0
default: idle
items: {idle: {title: Idle}, smile: {kind: ad, title: Smile offer, theme: {background: "#fff4cc"}}}
rules: [{when: happy, min_score: 0.5, show: smile}]
"""


def test_live_policy_switches_content_with_the_mood(tmp_path, capsys, face_model, clips, monkeypatch):
    _fake_camera(monkeypatch, clips["face"])
    policy = tmp_path / "policy.yaml"
    policy.write_text(LIVE_POLICY)
    code, _, err = run_cli(capsys, "live", "--no-display", "--model", face_model, "--max-frames", 15,
                           "--policy", policy)
    assert code == 0
    changes = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
    assert [c["content"] for c in changes] == ["idle", "smile"], changes  # default first, then the happy item
    assert changes[1]["mood"] == "happy" and changes[1]["score"] >= 0.5


def test_live_bad_policy_fails_before_the_camera_opens(tmp_path, capsys, face_model, monkeypatch):
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a: pytest.fail("camera opened despite a bad policy"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(LIVE_POLICY.replace("when: happy", "when: hapy"))
    code, _, err = run_cli(capsys, "live", "--no-display", "--model", face_model, "--policy", policy)
    assert code == 2 and "policy.yaml: rules[0].when: 'hapy' is not an emotion" in err


def test_content_panel_is_drawn_beside_the_frame():
    from moodlens.adapt import ContentSelector, parse_policy
    from moodlens.writers import with_content_panel

    import yaml

    choice = ContentSelector(parse_policy(yaml.safe_load(LIVE_POLICY))).update({"happy": 0.9, "sad": 0.1}, 0.0)
    frame = np.zeros((240, 320, 3), np.uint8)
    shown = with_content_panel(frame, choice, width=200)
    assert shown.shape == (240, 520, 3)
    assert (shown[:, :320] == 0).all()  # the frame itself is untouched
    assert tuple(shown[120, 400]) == (0xcc, 0xf4, 0xff)  # the item's theme background, in BGR


def test_live_ctrl_c_finalises_outputs(tmp_path, capsys, face_model, clips, monkeypatch):
    _fake_camera(monkeypatch, clips["face"])
    _interrupt_at(monkeypatch, 6, "signal")
    out = tmp_path / "live"
    code, stdout, _ = run_cli(capsys, "live", "--no-display", "--model", face_model, "--save-dir", out,
                              "--format", "csv", "--no-plot")
    assert code == 0
    (summary_path,) = out.glob("live-*_summary.json")
    summary = json.loads(summary_path.read_text())
    assert summary["interrupted"] and summary["frames"] == 6
    video = Path(summary["outputs"]["video"])
    assert count_frames(video) == 6
    with open(summary["outputs"]["timeline"], newline="") as fh:
        assert len({r["frame"] for r in csv.DictReader(fh)}) == 6


def test_live_window_needs_a_gui_build(capsys, face_model, clips, monkeypatch):
    if "GUI:                           NONE" not in cv2.getBuildInformation():
        pytest.skip("this OpenCV build has window support")
    _fake_camera(monkeypatch, clips["face"])
    code, _, err = run_cli(capsys, "live", "--model", face_model)
    assert code == 2 and "--no-display" in err


# ---- writers ---------------------------------------------------------------------------------


def test_plot_is_skipped_with_the_extra_named(tmp_path, capsys, face_model, clips, monkeypatch):
    def missing(module, extra):
        raise MissingExtraError(f"{module} is needed for this; install it with: pip install 'moodlens[{extra}]'")

    monkeypatch.setattr(report_mod, "require", missing)
    code, stdout, _ = run_cli(capsys, "face", clips["face"], "--model", face_model, "--save-dir", tmp_path)
    assert code == 0 and "moodlens[train]" in stdout
    assert (tmp_path / "face_summary.json").exists() and not (tmp_path / "face_scores.png").exists()


@pytest.mark.skipif(not have_pyav(), reason="PyAV with libx264 not installed")
@pytest.mark.parametrize("live", [False, True])
def test_h264_output_plays_back(tmp_path, shared_frames, live):
    target = tmp_path / "h264.mp4"
    sink = VideoSink(target, 25, (321, 181), codec="h264", live=live)  # odd sizes are cropped to even
    for i, f in enumerate(shared_frames[:10]):
        sink.write(cv2.resize(f, (321, 181)), i * 0.04 + (0.013 if live and i % 2 else 0.0))
    sink.commit()
    cap = cv2.VideoCapture(str(target))
    assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 320 and count_frames(target) == 10
    assert target.read_bytes()[4:8] == b"ftyp" and b"moov" in target.read_bytes()[:4096]  # index up front

"""Process a frame source: detect (on a shrunk copy; every frame, or every Nth
with a slow detector), track, classify, smooth, annotate, and write the outputs.

Detection, cropping and classification are the recogniser's own
(``FaceRecognizer.detector``, ``FaceRecognizer.crop``, ``FaceRecognizer.classify``);
this module adds time: tracks, smoothing, and streaming outputs.

Ctrl+C: while a source is processed, the first SIGINT only asks the loop to
stop after the current frame; the outputs are then finalised as usual and the
summary says ``"interrupted": true``. A second Ctrl+C stops at once (temp
files are removed, nothing is left under an output's real name).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, TextIO

import cv2

from ..errors import InputError, MissingExtraError
from ..face.detect import to_gray
from ..face.recognizer import FaceRecognizer
from ..results import Box
from ..writers import draw_faces
from .outputs import TimelineWriter, VideoSink, write_json
from .report import SUMMARY_VERSION, TrackBook, TrackedFace, save_plot
from .sources import Frame, FrameSource
from .tracking import ScoreSmoother, Tracker, TrackerOptions


# Default detection width: half the frame, within these bounds (pixels). Cost
# grows with the pixel count; faces smaller than the detector's min_size
# divided by the shrink factor are missed.
AUTO_DETECT_WIDTH = 480
AUTO_DETECT_MIN = 240


@dataclass
class VideoOptions:
    every: int | None = None  # run the detector on every Nth frame and follow faces in between;
    # None = every frame with a fast detector (BlazeFace, ~3 ms), else every slow_every-th (Haar)
    slow_every: int = 3  # the detection interval for a slow detector when every is None
    detect_width: int | None = None  # detect on frames shrunk to this width (pixels); 0 = full size;
    # None = half the frame width, at most AUTO_DETECT_WIDTH
    smooth: str = "ema"  # "ema", "window" or "off"
    alpha: float = 0.3  # EMA: weight of the newest frame's scores
    window: int = 8  # "window": frames averaged
    margin: float = 0.05  # label hysteresis: a new label must lead the shown one by this much
    iou: float = 0.3  # least box overlap to continue a track
    max_missed_s: float = 1.0  # seconds a track survives without a matching detection
    min_hits: int = 2  # detections before a track is shown
    codec: str = "auto"  # annotated video: "auto", "h264" (PyAV) or "mp4v" (OpenCV)
    timeline_format: str = "jsonl"  # "jsonl" or "csv"
    plot: bool = True  # write the scores-over-time PNG (needs matplotlib)
    threads: int = 1  # encoder threads (ONNX Runtime's are set on the recogniser)

    @classmethod
    def live(cls, **overrides) -> "VideoOptions":
        """Webcam defaults: BlazeFace on every frame; with Haar (40-70 ms on a
        320-wide copy of a 640x480 frame on one core) every 8th frame, following
        faces in between (~0.1 ms), so the average frame stays near 10 ms."""
        return cls(**{"slow_every": 8, **overrides})

    def __post_init__(self):
        if self.every is not None and self.every < 1:
            raise ValueError(f"--every must be >= 1, got {self.every}")
        if self.slow_every < 1:
            raise ValueError(f"slow_every must be >= 1, got {self.slow_every}")
        if self.detect_width is not None and self.detect_width < 0:
            raise ValueError(f"--detect-width must be >= 0, got {self.detect_width}")
        ScoreSmoother(self.smooth, self.alpha, self.window)  # validates the smoothing settings

    def detection_interval(self, detector) -> int:
        """Frames between detections for this detector."""
        if self.every is not None:
            return self.every
        return 1 if getattr(detector, "fast", False) else self.slow_every

    def detection_width(self, frame_width: int) -> int:
        """Width of the copy the detector sees. Haar finds faces from 24 pixels
        up, so the default (half width, at most 480) finds faces from 48 px in
        640-wide video and from 64 px in 1280-wide video."""
        if self.detect_width is None:
            return min(frame_width, max(AUTO_DETECT_MIN, min(AUTO_DETECT_WIDTH, frame_width // 2)))
        return min(frame_width, self.detect_width) if self.detect_width else frame_width


@dataclass
class OutputPaths:
    video: Path | None  # annotated MP4
    timeline: Path | None  # per-frame rows, .jsonl or .csv
    plot: Path | None  # scores over time, .png
    summary: Path  # written last: its presence with "complete": true marks the set complete

    @classmethod
    def for_stem(cls, out_dir: str | Path, stem: str, timeline_format: str = "jsonl") -> "OutputPaths":
        d = Path(out_dir)
        return cls(video=d / f"{stem}_moodlens.mp4", timeline=d / f"{stem}_timeline.{timeline_format}",
                   plot=d / f"{stem}_scores.png", summary=d / f"{stem}_summary.json")


class _Stop:
    requested = False


@contextlib.contextmanager
def graceful_stop():
    """First Ctrl+C sets ``requested``; a second raises KeyboardInterrupt."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def track_label(face: TrackedFace) -> str:
    return f"#{face.track} {face.label} {face.score:.2f}"


class VideoProcessor:
    def __init__(self, recognizer: FaceRecognizer, options: VideoOptions | None = None):
        self.recognizer = recognizer
        self.labels = recognizer.labels
        self.options = options or VideoOptions()
        self.reset()

    def reset(self) -> None:
        o = self.options
        self.tracker = Tracker(TrackerOptions(o.iou, o.max_missed_s, o.min_hits),
                               smoother=lambda: ScoreSmoother(o.smooth, o.alpha, o.window, o.margin))
        self._count = 0
        self._every = o.detection_interval(self.recognizer.detector)

    def step(self, frame: Frame, source_name: str = "") -> list[TrackedFace]:
        """Faces on one frame, with their tracks' smoothed scores."""
        image = frame.image
        h, w = image.shape[:2]
        scale = self.options.detection_width(w) / w
        size = (max(1, round(w * scale)), max(1, round(h * scale)))  # a 1x4000 frame keeps 1 row
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else image
        small_gray = to_gray(small)
        if self._count % self._every == 0:
            found = self.recognizer.detector.detect_frame(small)
            self.tracker.update([d.box.to_list() for d in found], small_gray, frame.time,
                                angles=[d.eye_angle() for d in found])
        else:
            self.tracker.follow(small_gray, frame.time)
        self._count += 1
        shown = self.tracker.shown()
        if not shown:
            return []
        gray = to_gray(image)
        boxes = [Box(*(int(round(v / scale)) for v in tr.box)) for tr in shown]
        probs = self.recognizer.classify([self.recognizer.crop(gray, b, tr.angle) for tr, b in zip(shown, boxes)])
        faces = []
        for tr, box, p in zip(shown, boxes, probs):
            smoothed = tr.smoother.update(p)
            k = tr.smoother.label_index
            faces.append(TrackedFace(box=box.clipped(w, h), label=self.labels[k], score=float(smoothed[k]),
                                     scores={l: float(v) for l, v in zip(self.labels, smoothed)},
                                     source=source_name, track=tr.id, detected=tr.detected))
        return faces

    def process(self, source: FrameSource, outputs: OutputPaths | None = None, *,
                timeline_out: TextIO | None = None,
                on_frame: Callable[[Frame, object, list[TrackedFace]], bool | None] | None = None,
                progress=None, should_stop: Callable[[], bool] | None = None) -> dict:
        """Run ``source`` to its end (or Ctrl+C, or ``on_frame`` returning False)
        and return the summary. Outputs go to ``outputs`` (files, committed at
        the end) and/or the timeline to ``timeline_out`` (a stream).
        ``should_stop`` is polled every frame (a batch's stop request); True
        ends the video like Ctrl+C does."""
        self.reset()
        o = self.options
        book = TrackBook(self.labels, keep_series=bool(outputs and outputs.plot and o.plot))
        sink = timeline = None
        interrupted = False
        started = time.perf_counter()
        frames = 0
        last_t = 0.0
        try:
            with graceful_stop() as stop:
                if outputs and outputs.video:
                    sink = VideoSink(outputs.video, source.fps, source.size, o.codec, o.threads, live=source.live)
                if outputs and outputs.timeline:
                    timeline = TimelineWriter(self.labels, o.timeline_format, target=outputs.timeline)
                elif timeline_out is not None:
                    timeline = TimelineWriter(self.labels, o.timeline_format, out=timeline_out, flush_every_frame=True)
                try:
                    for frame in source:
                        faces = self.step(frame, source.name)
                        book.add(frame.index, frame.time, faces)
                        annotated = draw_faces(frame.image, faces, track_label) if sink or on_frame else None
                        if sink:
                            sink.write(annotated, frame.time)
                        if timeline:
                            timeline.write_frame(frame.index, frame.time, faces)
                        frames, last_t = frames + 1, frame.time
                        if progress is not None:
                            progress.update(1)
                        if on_frame is not None and on_frame(frame, annotated, faces) is False:
                            break
                        if stop.requested or (should_stop is not None and should_stop()):
                            interrupted = True
                            break
                except KeyboardInterrupt:
                    interrupted = True
                if frames == 0:
                    raise KeyboardInterrupt if interrupted else InputError(f"{source.name}: video holds no frames")
                summary = self._summary(source, book, frames, last_t, interrupted, time.perf_counter() - started)
                if outputs and outputs.summary.exists():
                    # an older summary must not vouch for the new files while they replace the old ones
                    outputs.summary.unlink()
                written = {}
                if sink:
                    written["video"] = str(sink.commit())
                    sink = None
                if timeline:
                    path = timeline.commit()
                    timeline = None
                    if path:
                        written["timeline"] = str(path)
                if outputs and outputs.plot and o.plot:
                    self._plot(outputs.plot, book, source, summary, written)
                summary["outputs"] = written
                if outputs:
                    summary["outputs"]["summary"] = str(outputs.summary)
                    write_json(outputs.summary, summary)  # last: marks the set complete
                return summary
        except BaseException:
            for out in (sink, timeline):
                if out is not None:
                    out.discard()
            raise

    @staticmethod
    def _plot(target: Path, book: TrackBook, source: FrameSource, summary: dict, written: dict) -> None:
        if not book.tracks:
            summary["warnings"].append("no face found: no plot written")
            return
        try:
            written["plot"] = str(save_plot(target, book, Path(source.name).name, source.fps))
        except MissingExtraError as exc:  # matplotlib is not part of the core install
            summary["warnings"].append(f"plot skipped: {exc}")

    def _summary(self, source: FrameSource, book: TrackBook, frames: int, last_t: float,
                 interrupted: bool, seconds: float) -> dict:
        fps = source.fps
        duration = last_t + 1.0 / fps if source.live else frames / fps
        warnings = list(source.warnings)
        return {
            "version": SUMMARY_VERSION,
            "source": source.name,
            "complete": not interrupted,  # False: redo on resume
            "interrupted": interrupted,
            "truncated": bool(source.truncated),
            "frames": frames,
            "fps": round(fps, 3),
            "duration_s": round(duration, 3),
            "size": list(source.size),
            "tracks": book.summaries(fps),
            "warnings": warnings,
            "settings": {**asdict(self.options), "model": str(self.recognizer.model.path)},
            "processing": {"seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds else None},
        }

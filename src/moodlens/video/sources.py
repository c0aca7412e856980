"""Frame sources: a video file, a folder of frames, a webcam. One interface.

Every source yields :class:`Frame` objects (index, time in seconds, BGR
uint8 array of one fixed size) and checks its input up front: a file that is
not a video, a video with no frames and a camera that cannot be opened raise
:class:`~moodlens.errors.InputError` naming the input before any output exists.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import InputError, MoodlensError
from ..images import IMAGE_SUFFIXES, read_image

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}

# Frame rate assumed for a folder of frames and for a camera that reports none.
DEFAULT_FPS = 25.0  # frames/s

# A container's frame count is an estimate for some formats (duration x rate);
# a shortfall below this many frames is rounding, not a truncated file.
COUNT_SLACK = 2  # frames

# FFmpeg prints "moov atom not found" and the like for files that we report
# ourselves; keep its own log quiet unless the user asked for it.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@dataclass
class Frame:
    index: int  # 0-based position in the source
    time: float  # seconds from the start of the source
    image: np.ndarray  # BGR uint8, the source's fixed size


class FrameSource:
    """Base class. ``name`` identifies the input in messages and outputs."""

    name: str = ""
    fps: float = DEFAULT_FPS  # nominal frames/s (for writing video)
    size: tuple[int, int] = (0, 0)  # (width, height)
    frame_count: int | None = None  # expected frames, when known
    live: bool = False  # frames come in real time (camera): drop-not-queue, wall-clock times
    frames_read: int = 0
    warnings: list[str]

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def truncated(self) -> bool:
        """True when the source ended well before its declared length."""
        return self.frame_count is not None and self.frames_read < self.frame_count - COUNT_SLACK


class VideoFileSource(FrameSource):
    """Any container OpenCV's FFmpeg backend reads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = str(self.path)
        self.warnings = []
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path}: empty file")
        self._cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not self._cap.isOpened():
            raise InputError(f"{self.path}: not a readable video (corrupt, truncated or unsupported format)")
        ok, first = self._cap.read()
        if not ok or first is None or first.size == 0:
            self._cap.release()
            raise InputError(f"{self.path}: video holds no frames")
        self._first = first
        self.size = (first.shape[1], first.shape[0])
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else DEFAULT_FPS
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        image = self._first
        while image is not None:
            # Container timestamps are unreliable in damaged files; the frame
            # index at the nominal rate is what the timeline and video agree on.
            yield Frame(self.frames_read, self.frames_read / self.fps, image)
            self.frames_read += 1
            ok, image = self._cap.read()
            if not ok:
                image = None
        if self.truncated:
            self.warnings.append(f"decoding stopped after {self.frames_read} of {self.frame_count} frames "
                                 "(file truncated or corrupt)")

    def close(self) -> None:
        self._cap.release()


def _natural_key(path: Path):
    """frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class FolderSource(FrameSource):
    """Image files in one folder, in natural name order, played at ``fps``.

    Frames of another size are resized to the first frame's, because a video
    has one size; unreadable files are skipped with a warning."""

    def __init__(self, folder: str | Path, fps: float = DEFAULT_FPS):
        self.path = Path(folder)
        self.name = str(self.path)
        self.fps = fps
        self.warnings = []
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such folder")
        self.files = sorted((f for f in self.path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                            key=_natural_key)
        if not self.files:
            raise InputError(f"{self.path}: folder holds no image frames")
        self._first = None
        for f in self.files:  # the first readable frame fixes the size
            try:
                self._first = read_image(f)
                break
            except MoodlensError as exc:
                self.warnings.append(str(exc))
        if self._first is None:
            raise InputError(f"{self.path}: none of its {len(self.files)} image files is readable")
        self.size = (self._first.shape[1], self._first.shape[0])
        self.frame_count = len(self.files)
        self.skipped = 0

    def __iter__(self) -> Iterator[Frame]:
        for f in self.files:
            try:
                image = read_image(f)
            except MoodlensError as exc:
                self.warnings.append(f"skipped frame {exc}")
                self.skipped += 1
                continue
            if (image.shape[1], image.shape[0]) != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            yield Frame(self.frames_read, self.frames_read / self.fps, image)
            self.frames_read += 1

    @property
    def truncated(self) -> bool:
        return False  # skipped files are reported one by one


class CameraSource(FrameSource):
    """A webcam by index. With ``drop_stale`` a reader thread keeps only the
    newest frame, so slow processing adds no latency (frames are skipped
    instead of queueing in the driver's buffer)."""

    live = True

    def __init__(self, index: int = 0, width: int | None = 640, height: int | None = 480,
                 drop_stale: bool = True, max_frames: int | None = None, max_seconds: float | None = None):
        self.name = f"camera {index}"
        self.warnings = []
        self.max_frames = max_frames
        self.max_seconds = max_seconds
        self._cap = _quietly(cv2.VideoCapture, index)
        if not self._cap.isOpened():
            raise InputError(f"camera {index}: cannot be opened (no such device, in use, or no permission)")
        if width and height:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise InputError(f"camera {index}: opened but delivers no frames")
        self.size = (first.shape[1], first.shape[0])
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 30.0
        self._first = first
        self._drop_stale = drop_stale
        self._latest: np.ndarray | None = None
        self._ended = False
        self._stop = threading.Event()
        self._new = threading.Condition()
        self._thread: threading.Thread | None = None

    def _grab(self) -> None:
        while not self._stop.is_set():
            ok, image = self._cap.read()
            with self._new:
                if not ok:
                    self._ended = True
                else:
                    self._latest = image
                self._new.notify()
            if not ok:
                return

    def _next_image(self) -> np.ndarray | None:
        if not self._drop_stale:
            ok, image = self._cap.read()
            return image if ok else None
        with self._new:
            while self._latest is None and not self._ended:
                self._new.wait(timeout=1.0)
            image, self._latest = self._latest, None
            return image

    def __iter__(self) -> Iterator[Frame]:
        if self._drop_stale and self._thread is None:
            self._thread = threading.Thread(target=self._grab, name="moodlens-camera", daemon=True)
            self._thread.start()
        start = time.monotonic()
        image = self._first
        while image is not None:
            if image.shape[1::-1] != self.size:
                image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
            yield Frame(self.frames_read, time.monotonic() - start, image)
            self.frames_read += 1
            if self.max_frames is not None and self.frames_read >= self.max_frames:
                return
            if self.max_seconds is not None and time.monotonic() - start >= self.max_seconds:
                return
            image = self._next_image()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._cap.release()


def _quietly(fn, *args):
    """Call ``fn`` with OpenCV's own warnings muted: a camera that cannot be
    opened makes every capture backend log one, and we report it ourselves."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        return fn(*args)
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        return fn(*args)
    finally:
        logging.setLogLevel(level)


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_source(spec: str | Path | int, fps: float = DEFAULT_FPS) -> FrameSource:
    """A camera index (int or "camera:N"), a folder of frames, or a video file."""
    if isinstance(spec, int):
        return CameraSource(spec)
    text = str(spec)
    if text.startswith("camera:") and text[7:].isdigit():
        return CameraSource(int(text[7:]))
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path, fps=fps)
    return VideoFileSource(path)

"""Streaming writers for one video's outputs: the annotated MP4 and the
per-frame timeline. Each writes to a hidden temp file beside its target and
is renamed into place only by :meth:`commit`, so an output that exists under
its real name is complete; :meth:`discard` removes the temp file."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from ..errors import InputError

# x264 presets: "veryfast" keeps file outputs small; live video must keep up
# with the camera on one core, where "ultrafast" costs about a third as much.
FILE_PRESET, LIVE_PRESET = "veryfast", "ultrafast"
CRF = 23  # x264 quality (lower = better, bigger); 23 is its default


class PendingFile:
    """A temp path beside ``target`` that keeps the target's suffix, so
    libraries that pick a format by extension (OpenCV's VideoWriter) work."""

    def __init__(self, target: str | Path):
        self.target = Path(target)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.target.stem}.", suffix=f".part{self.target.suffix}",
                                   dir=self.target.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        self.path = Path(tmp)

    def commit(self) -> Path:
        os.replace(self.path, self.target)
        return self.target

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _even(size: tuple[int, int]) -> tuple[int, int]:
    """4:2:0 video needs even sides; odd frames lose their last row/column."""
    return size[0] - size[0] % 2, size[1] - size[1] % 2


class _PyAvSink:
    """H.264 (libx264) in MP4 with the index up front: plays in browsers."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], threads: int, live: bool):
        import av

        self.av = av
        self.size = _even(size)
        self.live = live
        self.container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate, options={
            "preset": LIVE_PRESET if live else FILE_PRESET, "crf": str(CRF)})
        self.stream.width, self.stream.height = self.size
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.thread_count = max(1, threads)
        # Live frames arrive at uneven times: stamp them in milliseconds so the
        # video plays at the pace it was seen. Files are constant-rate.
        self.time_base = Fraction(1, 1000) if live else 1 / rate
        self.stream.codec_context.time_base = self.time_base
        self.last_pts = -1
        self.count = 0

    def write(self, image: np.ndarray, t: float) -> None:
        w, h = self.size
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
        pts = int(round(t / self.time_base)) if self.live else self.count
        frame.pts = max(pts, self.last_pts + 1)
        frame.time_base = self.time_base
        self.last_pts = frame.pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.count += 1

    def close(self) -> None:
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()


class _Cv2Sink:
    """MPEG-4 Part 2 ('mp4v') through OpenCV: plays in desktop players everywhere."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]):
        self.size = _even(size)
        self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, self.size)
        if not self.writer.isOpened():
            raise InputError(f"{path}: OpenCV cannot write MP4 video here")
        self.count = 0

    def write(self, image: np.ndarray, t: float) -> None:
        w, h = self.size
        self.writer.write(np.ascontiguousarray(image[:h, :w]))
        self.count += 1

    def close(self) -> None:
        self.writer.release()


def have_pyav() -> bool:
    try:
        import av

        return "libx264" in av.codecs_available
    except ImportError:
        return False


class VideoSink:
    """Annotated video into ``target`` (temp file until commit).

    ``codec``: "h264" (PyAV), "mp4v" (OpenCV) or "auto" = h264 when PyAV with
    libx264 is installed, else mp4v."""

    def __init__(self, target: str | Path, fps: float, size: tuple[int, int], codec: str = "auto",
                 threads: int = 1, live: bool = False):
        if codec not in ("auto", "h264", "mp4v"):
            raise ValueError(f"unknown codec {codec!r}; use auto, h264 or mp4v")
        if codec == "h264" and not have_pyav():
            raise InputError("H.264 output needs PyAV with libx264: pip install av (or use --codec mp4v)")
        self.codec = "h264" if codec == "h264" or (codec == "auto" and have_pyav()) else "mp4v"
        self.file = PendingFile(target)
        try:
            self._sink = (_PyAvSink(self.file.path, fps, size, threads, live) if self.codec == "h264"
                          else _Cv2Sink(self.file.path, fps, size))
        except BaseException:
            self.file.discard()
            raise

    @property
    def frames(self) -> int:
        return self._sink.count

    def write(self, image: np.ndarray, t: float) -> None:
        self._sink.write(image, t)

    def commit(self) -> Path:
        """Finalise the container (index, trailer) and move it into place."""
        self._sink.close()
        if self._sink.count == 0:
            self.file.discard()
            raise InputError(f"{self.file.target}: no frames were written")
        return self.file.commit()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._sink.close()
        self.file.discard()


class TimelineWriter:
    """One row per face per frame (and one row for a frame with no face):
    time, frame, track, box, label, score, detected, every label's score.
    ``fmt`` is "jsonl" or "csv". Writes to ``out`` if given, else to a
    pending file for ``target``."""

    def __init__(self, labels: tuple[str, ...], fmt: str = "jsonl", target: str | Path | None = None,
                 out: TextIO | None = None, flush_every_frame: bool = False):
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown timeline format {fmt!r}; use jsonl or csv")
        self.labels, self.fmt, self.flush_every_frame = labels, fmt, flush_every_frame
        self.file = PendingFile(target) if target is not None else None
        self.out = open(self.file.path, "w", newline="", encoding="utf-8") if self.file else out
        if fmt == "csv":
            self.csv = csv.writer(self.out, lineterminator="\n")
            self.csv.writerow(["time", "frame", "track", "x", "y", "w", "h", "label", "score", "detected", *labels])

    def write_frame(self, index: int, t: float, faces) -> None:
        if self.fmt == "jsonl":
            lines = [json.dumps({"time": round(t, 3), "frame": index, "track": f.track, "box": f.box.to_list(),
                                 "label": f.label, "score": round(f.score, 4), "detected": f.detected,
                                 "scores": {k: round(v, 4) for k, v in f.scores.items()}}) for f in faces]
            # a frame without faces still gets a line, so the timeline covers every frame
            lines = lines or [json.dumps({"time": round(t, 3), "frame": index, "track": None})]
            self.out.write("\n".join(lines) + "\n")
        else:
            rows = [[f"{t:.3f}", index, f.track, *f.box.to_list(), f.label, f"{f.score:.4f}", int(f.detected),
                     *(f"{f.scores.get(k, 0.0):.4f}" for k in self.labels)] for f in faces]
            self.csv.writerows(rows or [[f"{t:.3f}", index, "", "", "", "", "", "", "", "", *[""] * len(self.labels)]])
        if self.flush_every_frame:
            self.out.flush()

    def commit(self) -> Path | None:
        if self.file is None:
            self.out.flush()
            return None
        self.out.close()
        return self.file.commit()

    def discard(self) -> None:
        if self.file is not None:
            self.out.close()
            self.file.discard()


def write_json(target: str | Path, data: dict) -> Path:
    pending = PendingFile(target)
    try:
        pending.path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        return pending.commit()
    except BaseException:
        pending.discard()
        raise

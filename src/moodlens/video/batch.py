"""Many videos: one worker process per core, a progress bar, and resume.

A video is skipped when its summary exists and says ``"complete": true``:
the summary is written after every other output, so a batch stopped at any
point (Ctrl+C, a crash, a power cut) redoes only the videos it had not
finished. Ctrl+C reaches the workers too (same process group); each ends its
current video cleanly, marked interrupted, and the batch stops there.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import cv2

from ..errors import MoodlensError
from .pipeline import OutputPaths, VideoOptions, VideoProcessor
from .sources import DEFAULT_FPS, FolderSource, VideoFileSource


@dataclass
class BatchSettings:
    model: str = "default"  # recogniser model name or path
    detector: str = "blazeface"  # detector spec
    threads: int = 1  # ONNX Runtime and OpenCV threads per worker
    jobs: int = 2  # worker processes (1 = in this process)
    out_dir: Path | None = None  # where outputs go; None = summaries only, nothing written
    overwrite: bool = False  # redo videos whose outputs are complete
    frames_fps: float = DEFAULT_FPS  # playback rate of folders of frames
    options: VideoOptions = field(default_factory=VideoOptions)


def output_stems(paths: list[Path]) -> list[str]:
    """Output name stems, unique within the batch: clip.mp4 in folders a and b
    -> a_clip, b_clip (and a number if that is not enough)."""
    stems = [p.name if p.is_dir() else p.stem for p in paths]
    counts = Counter(stems)
    out: list[str] = []
    for p, s in zip(paths, stems):
        if counts[s] > 1:
            s = f"{p.resolve().parent.name}_{s}"
        base, k = s, 2
        while s in out:
            s, k = f"{base}_{k}", k + 1
        out.append(s)
    return out


def complete_summary(paths: OutputPaths) -> dict | None:
    """The stored summary when every output of the set is there and complete."""
    try:
        summary = json.loads(paths.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("complete") is not True:
        return None
    outputs = summary.get("outputs", {})
    if any(not Path(outputs[k]).is_file() for k in ("video", "timeline", "plot") if k in outputs):
        return None
    return summary


def open_video(path: Path, frames_fps: float = DEFAULT_FPS):
    return FolderSource(path, fps=frames_fps) if path.is_dir() else VideoFileSource(path)


def process_one(processor: VideoProcessor, path: Path, stem: str, settings: BatchSettings, progress=None,
                should_stop=None) -> dict:
    """One video -> its summary, or ``{"source", "error"}``; never raises for bad input."""
    outputs = None
    if settings.out_dir is not None:
        outputs = OutputPaths.for_stem(settings.out_dir, stem, settings.options.timeline_format)
        if not settings.overwrite:
            done = complete_summary(outputs)
            if done is not None:
                return {**done, "skipped": True}
    try:
        with open_video(path, settings.frames_fps) as source:
            if progress is not None and source.frame_count:
                progress.reset(total=source.frame_count)
                progress.set_description(path.name[:30])
            return processor.process(source, outputs, progress=progress, should_stop=should_stop)
    except MoodlensError as exc:
        return {"source": str(path), "error": str(exc).removeprefix(f"{path}: ")}


_worker: dict = {}


def _init_worker(settings: BatchSettings, stop) -> None:
    # An idle worker must not die of Ctrl+C; a busy one ends its video cleanly
    # (VideoProcessor installs its own handler while it works). ``stop`` is the
    # batch's request to end: videos already queued to a worker are not begun.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker["stop"] = stop
    from ..face.recognizer import FaceRecognizer

    cv2.setNumThreads(settings.threads)
    rec = FaceRecognizer(settings.model, settings.detector, settings.threads)
    _worker["processor"] = VideoProcessor(rec, settings.options)
    _worker["settings"] = settings


def _work(path: str, stem: str) -> dict:
    stop = _worker["stop"]
    if stop.is_set():
        return {"source": path, "not_started": True}
    result = process_one(_worker["processor"], Path(path), stem, _worker["settings"], should_stop=stop.is_set)
    if result.get("interrupted"):
        stop.set()  # this worker saw Ctrl+C: no one begins another video
    return result


def _progress_bar(total: int, unit: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # disable=None: no bar when stderr is not a terminal (logs, tests, pipes)
    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None, dynamic_ncols=True, leave=False)


def run_batch(paths: list[Path], settings: BatchSettings, on_result: Callable[[dict], None],
              recognizer=None) -> bool:
    """Process ``paths``, calling ``on_result`` with each summary as it is
    ready. Returns False when interrupted by Ctrl+C."""
    stems = output_stems(paths)
    jobs = max(1, min(settings.jobs, len(paths), os.cpu_count() or 1))
    if jobs == 1:
        from ..face.recognizer import FaceRecognizer

        rec = recognizer or FaceRecognizer(settings.model, settings.detector, settings.threads)
        processor = VideoProcessor(rec, settings.options)
        bar = _progress_bar(0, "frame")
        try:
            for path, stem in zip(paths, stems):
                result = process_one(processor, path, stem, settings, progress=bar)
                _emit(on_result, result, bar)
                if result.get("interrupted"):
                    return False
        except KeyboardInterrupt:
            return False
        finally:
            if bar is not None:
                bar.close()
        return True

    bar = _progress_bar(len(paths), "video")
    # spawn, not fork: a forked ONNX Runtime or OpenCV thread pool can deadlock
    ctx = get_context("spawn")
    stop = ctx.Event()
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(settings, stop))
    finished = True
    emitted: set = set()
    futures: dict = {}
    try:
        futures = {pool.submit(_work, str(p), s): p for p, s in zip(paths, stems)}
        for fut in as_completed(futures):
            try:
                result = fut.result()
            except Exception as exc:  # a worker crashed (out of memory, a native library fault)
                result = {"source": str(futures[fut]), "error": f"worker failed: {exc!r}"}
            emitted.add(fut)
            _emit(on_result, result, bar)
            if bar is not None:
                bar.update(1)
            if result.get("interrupted"):  # a worker saw Ctrl+C: the whole batch stops
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        finished = False
        stop.set()
        for f in futures:
            f.cancel()
        # running videos end at their next frame, marked interrupted: report them
        for fut in futures:
            if fut not in emitted and not fut.cancelled():
                try:
                    result = fut.result()
                except Exception:
                    continue
                if not result.get("not_started"):
                    _emit(on_result, result, bar)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if bar is not None:
            bar.close()
    return finished


def _emit(on_result, result: dict, bar) -> None:
    if bar is not None:
        bar.clear()
    on_result(result)
    if bar is not None:
        bar.refresh()


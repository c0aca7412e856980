"""Many images: annotated copies, one result sidecar per image, and resume.

With ``--save-dir OUT`` each image that could be read gets OUT/<stem>_moodlens.<ext>
(the annotated copy) and then OUT/<stem>_moodlens.json (its full, unrounded
result; written last and atomically, so its presence means the image is done).
A later run with the same OUT and the same model, detector and --no-detect
prints the stored result instead of reading the image again: an interrupted
batch, local or on Ray, resumes where it stopped and prints exactly what a
fresh run would have. Images that failed leave no sidecar and are tried again;
``overwrite`` redoes everything. Without OUT nothing is written and nothing is
skipped.

Both engines (``moodlens face`` and ``--engine ray``) call :func:`process_image`,
so their outputs cannot drift apart.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator

from .errors import MoodlensError
from .face.recognizer import read_image_file
from .io import atomic_path
from .results import ImageResult
from .video.batch import output_stems
from .writers import draw_faces, save_image

SIDECAR_VERSION = 1
ANNOTATED_SUFFIXES = (".jpg", ".jpeg", ".png")  # other formats are annotated as PNG

__all__ = ["SIDECAR_VERSION", "output_paths", "output_stems", "process_image", "process_images", "report",
           "settings_of", "stored_result"]

IMAGES_PER_TASK = 16  # images a worker process takes at a time: amortises the hand-over
MIN_IMAGES_FOR_JOBS = 64  # fewer images are done in this process: starting workers would cost more


def output_paths(save_dir: Path, path: Path, stem: str) -> tuple[Path, Path]:
    """(annotated copy, result sidecar) of one image. ``stem`` comes from
    :func:`output_stems` over the whole batch, so two photo.jpg in different
    folders do not overwrite each other's outputs."""
    suffix = path.suffix if path.suffix.lower() in ANNOTATED_SUFFIXES else ".png"
    return save_dir / f"{stem}_moodlens{suffix}", save_dir / f"{stem}_moodlens.json"


def settings_of(recognizer, detect: bool) -> dict:
    """What a stored result depends on: a sidecar made with other settings is
    redone. The model counts by its content, not its path, so a Ray worker
    whose moodlens is installed elsewhere still recognises the same model."""
    model = Path(recognizer.model.path)
    st = model.stat()
    return {"model": _sha256(str(model.resolve()), st.st_size, st.st_mtime_ns), "detector": str(recognizer.detector_spec),
            "detect": bool(detect)}


@functools.lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a model rewritten in place is hashed again
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stored_result(path: Path, stem: str, save_dir: Path, settings: dict) -> ImageResult | None:
    """The result stored for ``path`` when its outputs are complete and were
    made with ``settings``; None otherwise (missing, damaged, another file's)."""
    annotated, sidecar = output_paths(save_dir, path, stem)
    try:
        doc = json.loads(sidecar.read_text(encoding="utf-8"))
        if doc["version"] != SIDECAR_VERSION or doc["settings"] != settings or not annotated.is_file():
            return None
        result = ImageResult.from_record(doc["result"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return result if result.source == str(path) and result.error is None else None


def process_image(recognizer, path: Path, stem: str, save_dir: Path | None = None, *, detect: bool = True,
                  overwrite: bool = False, data: bytes | None = None) -> tuple[ImageResult, bool]:
    """One image -> (its result, True if it was already done). A bad file
    gives a result with ``error`` set; only a failure to write outputs raises.
    ``data``: the file's bytes when they were read already."""
    settings = settings_of(recognizer, detect)
    if save_dir is not None and not overwrite:
        done = stored_result(path, stem, save_dir, settings)
        if done is not None:
            return done, True
    if save_dir is None:
        return recognizer.predict_file(path, detect=detect, data=data), False
    try:  # decoded once, for the result and the annotated copy
        image = read_image_file(path, data)
    except MoodlensError as exc:
        return ImageResult(source=str(path), error=str(exc)), False
    result = recognizer.predict_decoded(image, path, detect)
    if result.error:
        return result, False
    annotated, sidecar = output_paths(save_dir, path, stem)
    save_image(annotated, draw_faces(image, result.faces))
    doc = {"version": SIDECAR_VERSION, "settings": settings, "result": result.to_record()}
    with atomic_path(sidecar) as tmp:  # after the annotated copy: a sidecar means both are there
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return result, False


def process_images(files: list[Path], save_dir: Path | None, *, model: str, detector: str, threads: int,
                   detect: bool, overwrite: bool, jobs: int = 1) -> Iterator[tuple[ImageResult, bool]]:
    """(result, done before) for each of ``files``, in input order.

    With ``jobs`` > 1 and enough images, worker processes (spawned, one
    recogniser each, made once) take ``IMAGES_PER_TASK`` images at a time; the
    results come back in input order all the same, so the output does not
    depend on ``jobs``. A worker that dies makes its images' results errors.
    """
    stems = output_stems(files)
    jobs = max(1, min(jobs, os.cpu_count() or 1, math.ceil(len(files) / IMAGES_PER_TASK)))
    options = {"save_dir": save_dir, "detect": detect, "overwrite": overwrite}
    if jobs == 1 or len(files) < MIN_IMAGES_FOR_JOBS:
        from .face.recognizer import FaceRecognizer

        recognizer = FaceRecognizer(model=model, detector=detector, threads=threads)
        for path, stem in zip(files, stems):
            yield process_image(recognizer, path, stem, **options)
        return
    tasks = [list(zip(files[i:i + IMAGES_PER_TASK], stems[i:i + IMAGES_PER_TASK]))
             for i in range(0, len(files), IMAGES_PER_TASK)]
    # spawn, not fork: a forked ONNX Runtime or OpenCV thread pool can deadlock
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_start_worker,
                             initargs=(model, detector, threads)) as pool:
        futures = [pool.submit(_work, task, options) for task in tasks]
        try:
            for task, future in zip(tasks, futures):
                try:
                    done = [(ImageResult.from_record(record), before) for record, before in future.result()]
                except Exception as exc:  # the worker died (out of memory, a native library fault)
                    done = [(ImageResult(source=str(path), error=f"worker failed: {exc!r}"), False)
                            for path, _ in task]
                yield from done
        finally:
            for future in futures:  # Ctrl+C or a closed pipe: drop what has not started
                future.cancel()


_worker_recognizer = None


def _start_worker(model: str, detector: str, threads: int) -> None:
    global _worker_recognizer
    from .face.recognizer import FaceRecognizer

    _worker_recognizer = FaceRecognizer(model=model, detector=detector, threads=threads)


def _work(task: list[tuple[Path, str]], options: dict) -> list[tuple[dict, bool]]:
    out = []
    for path, stem in task:
        result, before = process_image(_worker_recognizer, path, stem, **options)
        out.append((result.to_record(), before))
    return out


def report(failed: int, total: int, skipped: int, save_dir: Path | None) -> None:
    """The batch's closing lines on stderr (stdout carries only results)."""
    if skipped:
        print(f"note: {skipped} image{'s' if skipped > 1 else ''} already done in {save_dir}: stored results "
              "printed (--overwrite redoes them)", file=sys.stderr)
    if failed:
        print(f"{failed} of {total} inputs failed", file=sys.stderr)

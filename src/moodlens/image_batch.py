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
import sys
from pathlib import Path

from .images import decode_image, read_image
from .io import atomic_path
from .results import ImageResult
from .video.batch import output_stems
from .writers import draw_faces, save_image

SIDECAR_VERSION = 1
ANNOTATED_SUFFIXES = (".jpg", ".jpeg", ".png")  # other formats are annotated as PNG

__all__ = ["SIDECAR_VERSION", "output_paths", "output_stems", "process_image", "report", "settings_of",
           "stored_result"]


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
    result = recognizer.predict_file(path, detect=detect, data=data)
    if result.error or save_dir is None:
        return result, False
    annotated, sidecar = output_paths(save_dir, path, stem)
    image = read_image(path) if data is None else decode_image(bytes(data), str(path))
    save_image(annotated, draw_faces(image, result.faces))
    doc = {"version": SIDECAR_VERSION, "settings": settings, "result": result.to_record()}
    with atomic_path(sidecar) as tmp:  # after the annotated copy: a sidecar means both are there
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return result, False


def report(failed: int, total: int, skipped: int, save_dir: Path | None) -> None:
    """The batch's closing lines on stderr (stdout carries only results)."""
    if skipped:
        print(f"note: {skipped} image{'s' if skipped > 1 else ''} already done in {save_dir}: stored results "
              "printed (--overwrite redoes them)", file=sys.stderr)
    if failed:
        print(f"{failed} of {total} inputs failed", file=sys.stderr)

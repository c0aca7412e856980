"""Reading images from disk into 8-bit BGR arrays, whatever their format.

Grayscale, RGBA/LA and 16-bit PNG/TIFF all come out as uint8 BGR; a file that
is not an image raises :class:`InputError` naming the file.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}


def to_bgr8(image: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Any OpenCV image array -> contiguous uint8 BGR."""
    if image.size == 0:
        raise InputError(f"{source}: empty image")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise InputError(f"{source}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim != 3:
        raise InputError(f"{source}: unsupported image shape {image.shape}")
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 2:  # gray + alpha
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 3:
        return np.ascontiguousarray(image)
    raise InputError(f"{source}: unsupported number of channels ({channels})")


def read_image(path: str | Path) -> np.ndarray:
    """Decode a file by its content (not its extension) into uint8 BGR."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if data.size == 0:
        raise InputError(f"{path}: empty file")
    return decode_image(data.tobytes(), str(path))


def decode_image(data: bytes, source: str = "<bytes>") -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None:
        raise InputError(f"{source}: not a readable image (corrupt or unsupported format)")
    return to_bgr8(image, source)


def expand_inputs(items: list[str], suffixes: set[str] = IMAGE_SUFFIXES) -> tuple[list[Path], list[str]]:
    """Files, folders (searched recursively for ``suffixes``) and glob patterns ->
    (files, problems). A folder with no matching files or a pattern that
    matches nothing is a problem, not an exception, so a batch goes on."""
    import glob

    files: list[Path] = []
    problems: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                problems.append(f"{p}: folder holds no files of type {', '.join(sorted(suffixes))}")
            files.extend(found)
        elif p.exists():
            files.append(p)
        elif any(ch in item for ch in "*?["):
            matched = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            if not matched:
                problems.append(f"{item}: pattern matches no files")
            files.extend(matched)
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems

"""Reading images from disk into 8-bit BGR arrays, whatever their format.

Files are recognised by their content, not their name (Yale's faces are GIFs
without an extension; phones and web pages save PNGs as .jpg). Grayscale,
RGBA/LA and 16-bit PNG/TIFF all come out as uint8 BGR, phone photos are turned
upright by their EXIF orientation, a GIF gives its first frame (an animated
GIF is played as a video by ``moodlens face``), and HEIC/HEIF photos are read
when pillow-heif is installed. A file that is not an image raises
:class:`InputError` naming the file, and what OpenCV's codecs print about
it themselves (``libpng error: ...``) does not reach the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".gif",
                  ".heic", ".heif"}
# EXIF orientation is applied with these flags (IMREAD_UNCHANGED ignores it); any
# depth and channel count is kept for to_bgr8 (alpha is dropped there anyway).
DECODE_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
BMP_HEADER_SIZES = {12, 40, 52, 56, 64, 108, 124}  # the DIB header sizes that follow "BM"


def image_kind(head: bytes) -> str | None:
    """The image format that the first bytes of a file announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in BMP_HEADER_SIZES:
        return "bmp"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return "pnm"
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return "heic"
    return None


def file_image_kind(path: str | Path) -> str | None:
    """:func:`image_kind` of a file's first bytes; None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return image_kind(fh.read(32))
    except OSError:
        return None


def looks_like_image(path: Path) -> bool:
    """True when the file's first bytes are those of an image format."""
    return file_image_kind(path) is not None


def shrink(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """A copy no larger than ``max_side`` on its longer side (INTER_AREA), and
    the scale applied (1.0 when it already fits; then the image itself)."""
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))  # a 2x20000 image keeps 1 row
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, scale


_native_stderr_lock = threading.Lock()


@contextlib.contextmanager
def quiet_native_stderr():
    """Send what native code writes to file descriptor 2 (libpng's "libpng
    error: IDAT: CRC error", OpenCV's "[ WARN:0@...]") to /dev/null for the
    duration: moodlens reports the same problem itself, naming the file. A lock
    keeps two threads from swapping the descriptor under each other."""
    with _native_stderr_lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real stderr (some embedded interpreters): nothing to hide
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


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
    if image_kind(data[:32]) == "heic":
        return _decode_heic(data, source)
    buf = np.frombuffer(data, dtype=np.uint8)
    image = None
    if buf.size:
        with quiet_native_stderr():
            image = cv2.imdecode(buf, DECODE_FLAGS)
    if image is None:
        raise InputError(f"{source}: not a readable image (corrupt or unsupported format)")
    return to_bgr8(image, source)


def _decode_heic(data: bytes, source: str) -> np.ndarray:
    """HEIC/HEIF (iPhone photos) through the optional pillow-heif wheel, upright."""
    try:
        import pillow_heif
    except ImportError:
        raise InputError(f"{source}: HEIC/HEIF photo; reading it needs pillow-heif: "
                         "pip install 'moodlens[heic]' (or convert the photo to JPEG)") from None
    try:
        heif = pillow_heif.open_heif(data, convert_hdr_to_8bit=True)  # its default applies EXIF orientation
        rgb = np.asarray(heif)
    except Exception as exc:  # pillow-heif raises plain ValueError/RuntimeError for damaged files
        raise InputError(f"{source}: not a readable HEIC/HEIF image ({exc})") from exc
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGR if rgb.shape[-1] == 4 else cv2.COLOR_RGB2BGR)


def is_animated_gif(path: str | Path) -> bool:
    """A GIF with more than one frame (played as a video by ``moodlens face``)."""
    if file_image_kind(path) != "gif":
        return False
    with quiet_native_stderr():
        cap = cv2.VideoCapture(str(path))
        frames = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
        cap.release()
    return frames > 1


def expand_inputs(items: list[str], suffixes: set[str] = IMAGE_SUFFIXES, sniff=None,
                  skipped: list[str] | None = None) -> tuple[list[Path], list[str]]:
    """Files, folders (searched recursively for ``suffixes``) and glob patterns ->
    (files, problems). A folder with no matching files or a pattern that
    matches nothing is a problem, not an exception, so a batch goes on.

    ``sniff(path) -> bool`` also takes folder files whose name does not say
    what they are (e.g. :func:`looks_like_image`). Each folder that had files
    left out adds one line to ``skipped`` saying how many and why."""
    import glob

    files: list[Path] = []
    problems: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found, left_out = [], []
            for f in sorted(f for f in p.rglob("*") if f.is_file()):
                if f.suffix.lower() in suffixes or (sniff is not None and sniff(f)):
                    found.append(f)
                elif not f.name.startswith("."):  # hidden files (.DS_Store) are not worth a word
                    left_out.append(f)
            if not found:
                problems.append(f"{p}: folder holds no files of type {', '.join(sorted(suffixes))}")
            elif left_out and skipped is not None:
                n, kinds = len(left_out), sorted({f.suffix.lower() or "no extension" for f in left_out})
                what = ("an image" if n == 1 else "images") if sniff else "of a type read here"
                skipped.append(f"{p}: skipped {n} {'file that is' if n == 1 else 'files that are'} not {what} "
                               f"({', '.join(kinds[:5])}{', ...' if len(kinds) > 5 else ''})")
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

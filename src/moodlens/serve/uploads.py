"""Checking uploads by their content before decoding them.

An upload's name and Content-Type are the client's word; its bytes are what
counts. Images are recognised by their signature and their header's
dimensions are checked *before* decoding, so a small file that declares a huge
picture (a decompression bomb) is refused without allocating it. Audio is
opened with libsndfile and its declared length checked before the samples
are read.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from ..errors import InputError
from ..images import decode_image


class UploadError(InputError):
    """An upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


IMAGE_TYPES = "JPEG, PNG, WebP or BMP"
MIN_AUDIO_RATE = 4000  # Hz: below this a file holds no speech to hear (telephone audio is 8000)


def image_header(data: bytes, what: str = "image upload") -> tuple[str, int, int]:
    """(format, width, height) read from the header; UploadError if the bytes
    are not one of the accepted image formats or the header is cut short."""
    head = data[:64 * 1024]
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n"):
            w, h = struct.unpack(">II", head[16:24])
            return "png", w, h
        if head.startswith(b"\xff\xd8"):
            return ("jpeg", *_jpeg_size(head, what))
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return ("webp", *_webp_size(head, what))
        if head[:2] == b"BM":
            w, h = struct.unpack("<ii", head[18:26])
            return "bmp", abs(w), abs(h)
    except struct.error:
        raise UploadError(f"{what}: header is truncated") from None
    raise UploadError(f"{what}: not a {IMAGE_TYPES} image (content checked, not the file name)", 415)


def _jpeg_size(head: bytes, what: str) -> tuple[int, int]:
    i = 2
    while i + 9 < len(head):
        if head[i] != 0xFF:
            raise UploadError(f"{what}: damaged JPEG header")
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = struct.unpack(">H", head[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame: the picture size
            h, w = struct.unpack(">HH", head[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise UploadError(f"{what}: JPEG header is truncated (no frame size in the first 64 KiB)")


def _webp_size(head: bytes, what: str) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L":
        bits = struct.unpack("<I", head[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    raise UploadError(f"{what}: damaged WebP header")


def check_image(data: bytes, max_bytes: int, max_pixels: int, what: str = "image upload") -> np.ndarray:
    """Bytes of an uploaded image -> BGR array, or UploadError with the status to send.
    ``what`` names the input in messages."""
    if not data:
        raise UploadError(f"{what}: empty (0 bytes)", 400)
    if len(data) > max_bytes:
        raise UploadError(f"{what}: {len(data)} bytes, over the limit of {max_bytes}", 413)
    kind, w, h = image_header(data, what)
    if w <= 0 or h <= 0:
        raise UploadError(f"{what}: {kind} header declares an empty picture ({w}x{h})")
    if w * h > max_pixels:
        raise UploadError(f"{what}: {w}x{h} pixels, over the limit of {max_pixels} pixels", 413)
    return decode_image(data, f"{what} ({kind})")


def check_audio(data: bytes, max_bytes: int, max_seconds: float, what: str = "audio upload") -> tuple[np.ndarray, int]:
    """Bytes of an uploaded audio file -> (samples, rate), or UploadError."""
    import soundfile as sf

    from ..voice.audio import decode_audio

    if not data:
        raise UploadError(f"{what}: empty (0 bytes)", 400)
    if len(data) > max_bytes:
        raise UploadError(f"{what}: {len(data)} bytes, over the limit of {max_bytes}", 413)
    try:
        info = sf.info(io.BytesIO(data))
    except Exception:
        info = None  # decode_audio below says what is wrong with it
    if info is not None and info.samplerate > 0 and info.frames / info.samplerate > max_seconds:
        raise UploadError(f"{what}: {info.frames / info.samplerate:.0f} s long, over the limit of "
                          f"{max_seconds:.0f} s", 413)
    samples, rate = decode_audio(data, what)
    if rate < MIN_AUDIO_RATE:
        raise UploadError(f"{what}: sample rate {rate} Hz; at least {MIN_AUDIO_RATE} Hz is needed")
    return samples, rate


def is_wav(data: bytes) -> bool:
    return data[:4] == b"RIFF" and data[8:12] == b"WAVE"

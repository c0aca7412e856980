"""Audio in, features out: the one preprocessing path of training and inference.

- :func:`read_wave` decodes a file (WAV, FLAC, OGG/Vorbis, MP3 and whatever else
  libsndfile reads) into 16 kHz mono float32, resampling with soxr.
- :func:`prepare_clip` trims leading/trailing silence and normalises loudness,
  so clips recorded at any level look alike to the model.
- :func:`features` turns a prepared clip into a log-mel spectrogram (dB) or MFCCs
  in numpy; :func:`windows` cuts it into the fixed-length model inputs.

The trainer caches ``features(prepare_clip(read_wave(f)))`` and the recogniser
computes exactly the same; ``tests/test_voice.py`` checks the numpy features
against librosa. librosa itself stays out of the inference path (it costs ~18 s
of numba compilation on first use, COMPUTE.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingExtraError, ModelError, require

SAMPLE_RATE = 16000  # Hz; every voice model runs at this rate
N_FFT = 512  # samples: 32 ms FFT -> 257 bins of 31.25 Hz
WIN_LENGTH = 400  # samples: 25 ms Hann window (zero-padded to N_FFT), the usual speech frame
HOP = 160  # samples: 10 ms at 16 kHz -> 100 frames per second
N_MELS = 64  # mel bands (Slaney scale and area normalisation, librosa's defaults)
FMIN = 50.0  # Hz: just below the lowest speaking fundamental (~60-80 Hz)
FMAX = 8000.0  # Hz: Nyquist at 16 kHz
AMIN = 1e-6  # mel power floor -> -60 dB, about the noise floor of studio corpora after normalisation
N_MFCC = 40  # cepstral coefficients (DCT-II, orthonormal) when kind == "mfcc"
CLIP_SECONDS = 3.0  # s: one model input window (RAVDESS utterances are ~1.5-3 s once trimmed)

PROSODY_ROWS = 2  # pitch (semitones above PITCH_REF_HZ, 0 when unvoiced) and voicing strength (0-1)
PITCH_REF_HZ = 100.0  # Hz: 0 semitones
PITCH_RANGE_HZ = (60.0, 500.0)  # Hz: speaking fundamentals, low male to high excited female
PITCH_FRAME = 640  # samples: 40 ms, over two periods of the lowest pitch
YIN_THRESHOLD = 0.15  # the first CMNDF dip below this is the period (de Cheveigne & Kawahara 2002)
VOICED_BELOW = 0.35  # frames whose best CMNDF dip is above this count as unvoiced

TARGET_DBFS = -20.0  # dBFS: RMS of the active (speech) frames after loudness normalisation
ACTIVE_DB = 30.0  # dB: frames within this of the loudest frame count as active for the RMS
TRIM_TOP_DB = 40.0  # dB: frames quieter than the loudest frame by more than this are trimmed
TRIM_MARGIN = 0.05  # s kept on each side of the first/last active frame
SILENT_DBFS = -60.0  # dBFS: a recording whose loudest 25 ms frame is below this is "silent"
MIN_SECONDS = 0.25  # s: the shortest sound (after trimming) worth classifying

# WAV format tags libsndfile decodes: a file carrying one of these that fails is damaged, not unsupported.
KNOWN_WAV_TAGS = {0x0001: "PCM", 0x0003: "float", 0x0006: "A-law", 0x0007: "u-law", 0x0002: "MS ADPCM",
                  0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0055: "MPEG layer III", 0xFFFE: "extensible"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64", ".opus"}


@dataclass(frozen=True)
class FeatureSettings:
    """How a model's input is computed; stored in every voice model's metadata."""

    kind: str = "logmel"  # logmel (dB) | mfcc
    sample_rate: int = SAMPLE_RATE  # Hz
    n_fft: int = N_FFT  # samples per FFT
    win_length: int = WIN_LENGTH  # samples in the Hann window
    hop: int = HOP  # samples between frames
    n_mels: int = N_MELS  # mel bands
    fmin: float = FMIN  # Hz, lowest mel edge
    fmax: float = FMAX  # Hz, highest mel edge
    amin: float = AMIN  # power floor before the log
    n_mfcc: int = N_MFCC  # coefficients kept when kind == "mfcc"
    clip_seconds: float = CLIP_SECONDS  # s, length of one model input window
    prosody: bool = False  # append PROSODY_ROWS rows (pitch in semitones, voicing) below the spectral rows

    def __post_init__(self):
        if self.kind not in ("logmel", "mfcc"):
            raise ValueError(f"feature kind must be logmel or mfcc, not {self.kind!r}")

    @property
    def n_features(self) -> int:
        return self.n_spectral + (PROSODY_ROWS if self.prosody else 0)

    @property
    def n_spectral(self) -> int:
        """Rows of log-mels or MFCCs (the rest, if any, are prosody)."""
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def clip_frames(self) -> int:
        """Frames in one window: librosa-style centred framing gives 1 + samples // hop."""
        return 1 + int(round(self.clip_seconds * self.sample_rate)) // self.hop

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "FeatureSettings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(f"unknown feature settings {', '.join(unknown)} (model made by a newer moodlens?)")
        return cls(**values)


# --- reading -----------------------------------------------------------------

def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a file into float32 samples (frames, channels) and its sample rate.

    Every failure is an :class:`InputError` that names the file and says what
    is wrong with it (empty, not audio, unsupported encoding, no samples, NaNs).
    """
    try:
        import soundfile as sf
    except ImportError as exc:  # a core dependency; only a broken install lacks it
        raise MissingExtraError("soundfile is needed to read audio: pip install soundfile") from exc
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an audio file")
    if size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from exc
    return _decode(str(path), str(path), head)


def decode_audio(data: bytes, name: str = "<bytes>") -> tuple[np.ndarray, int]:
    """Like :func:`load_audio` for bytes in memory (an upload): decoded by content."""
    import io

    if not data:
        raise InputError(f"{name}: empty upload (0 bytes)")
    return _decode(io.BytesIO(data), name, data[:64])


def _decode(source, name: str, head: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports everything as LibsndfileError/RuntimeError
        raise InputError(f"{name}: {_describe_unreadable(head, exc)}") from exc
    if data.shape[0] == 0:
        raise InputError(f"{name}: contains no audio samples")
    if not np.isfinite(data).all():
        raise InputError(f"{name}: contains NaN or infinite samples (corrupt float audio)")
    return data, int(rate)


def _describe_unreadable(head: bytes, exc: Exception) -> str:
    """A message for a file libsndfile refused (``head``: its first 64 bytes),
    naming the WAV encoding when that is why."""
    detail = str(exc).split(": ", 1)[-1].strip() or type(exc).__name__
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        fmt = head.find(b"fmt ")
        if fmt >= 0 and len(head) >= fmt + 24:
            tag = int.from_bytes(head[fmt + 8:fmt + 10], "little")
            bits = int.from_bytes(head[fmt + 22:fmt + 24], "little")
            if tag in KNOWN_WAV_TAGS:
                return f"damaged WAV file ({KNOWN_WAV_TAGS[tag]}, {bits} bits per sample; libsndfile: {detail})"
            return (f"unsupported WAV sample format (format tag 0x{tag:04x}, {bits} bits per sample; "
                    f"libsndfile: {detail}); convert it to 16-bit PCM WAV or FLAC")
        return f"damaged WAV file (libsndfile: {detail})"
    return f"not a readable audio file (corrupt, or a format libsndfile cannot decode: {detail})"


def to_mono(samples: np.ndarray) -> np.ndarray:
    """(frames,) or (frames, channels) -> (frames,) float32 by averaging channels."""
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples


def resample(wave: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling: soxr (a core dependency), else an FFT fallback."""
    if rate == target:
        return wave.astype(np.float32, copy=False)
    try:
        import soxr
    except ImportError:
        return _fft_resample(wave, rate, target)
    return soxr.resample(wave, rate, target, quality="HQ").astype(np.float32, copy=False)


def _fft_resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Ideal low-pass resampling in the frequency domain (exact for band-limited
    periodic signals; only used when soxr is missing)."""
    n_out = int(round(len(wave) * target / rate))
    spectrum = np.fft.rfft(wave.astype(np.float64))
    keep = min(len(spectrum), n_out // 2 + 1)
    out = np.fft.irfft(spectrum[:keep], n=n_out) * (n_out / len(wave))
    return out.astype(np.float32)


def read_wave(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A file as mono float32 at ``rate`` Hz (no trimming or normalisation)."""
    samples, file_rate = load_audio(path)
    return resample(to_mono(samples), file_rate, rate)


def read_audio_track(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """The first audio stream of a video file as mono float32 at ``rate`` Hz, or
    None when the file has no audio stream. Needs PyAV (the [video] extra):
    OpenCV reads only the pictures of a video."""
    av = require("av", "video")
    path = Path(path)
    try:
        container = av.open(str(path))
    except Exception as exc:  # PyAV raises its own FFmpeg error classes
        raise InputError(f"{path}: not a readable media file ({exc})") from exc
    with container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        try:
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))  # flush
        except Exception as exc:
            if not chunks:
                raise InputError(f"{path}: audio track cannot be decoded ({exc})") from exc
            # a damaged tail: keep what decoded, as the video half does
    if not chunks:
        raise InputError(f"{path}: audio track holds no samples")
    wave = np.concatenate(chunks).astype(np.float32, copy=False)
    if not np.isfinite(wave).all():
        raise InputError(f"{path}: audio track contains NaN or infinite samples")
    return wave


# --- loudness and silence ------------------------------------------------------

def frame_db(wave: np.ndarray, frame: int = WIN_LENGTH, hop: int = HOP) -> np.ndarray:
    """RMS level of each 25 ms frame (10 ms apart) in dBFS."""
    if len(wave) < frame:
        wave = np.pad(wave, (0, frame - len(wave)))
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame)[::hop]
    power = np.einsum("ij,ij->i", frames, frames, dtype=np.float64) / frame
    return 10.0 * np.log10(power + 1e-12)


def prepare_clip(wave: np.ndarray, source: str = "<array>", rate: int = SAMPLE_RATE) -> np.ndarray:
    """Trim silence and normalise loudness; raise InputError for silent or too-short audio."""
    if len(wave) == 0:
        raise InputError(f"{source}: contains no audio samples")
    db = frame_db(wave)
    peak = float(db.max())
    if peak < SILENT_DBFS:
        raise InputError(f"{source}: silent (loudest frame {peak:.0f} dBFS, below {SILENT_DBFS:.0f} dBFS)")
    active = np.flatnonzero(db > peak - TRIM_TOP_DB)
    margin = int(TRIM_MARGIN * rate)
    start = max(0, active[0] * HOP - margin)
    stop = min(len(wave), active[-1] * HOP + WIN_LENGTH + margin)
    clip = wave[start:stop]
    if len(clip) < MIN_SECONDS * rate:
        raise InputError(f"{source}: too short ({len(clip) / rate:.2f} s of sound; "
                         f"at least {MIN_SECONDS:.2f} s is needed)")
    loud = db[db > peak - ACTIVE_DB]
    level = 10.0 * np.log10(np.mean(10.0 ** (loud / 10.0)))
    return (clip * 10.0 ** ((TARGET_DBFS - level) / 20.0)).astype(np.float32)


# --- features --------------------------------------------------------------------

def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-12) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


@lru_cache(maxsize=8)
def mel_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) triangular filters, each normalised to unit area."""
    fft_hz = np.linspace(0, rate / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


@lru_cache(maxsize=8)
def _sparse_filterbank(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """The filterbank as (bin indices, weights), each (n_mels, widest filter in bins).

    Applying it by gather + einsum instead of a matrix product keeps BLAS out of
    the feature path: OpenBLAS spreads a product this size over all cores, and
    on a busy machine waiting for them cost 16 ms instead of 0.05 ms (measured).
    """
    fb = mel_filterbank(rate, n_fft, n_mels, fmin, fmax)
    nonzero = [np.flatnonzero(row) for row in fb]
    width = max(1, max(len(nz) for nz in nonzero))
    index = np.zeros((n_mels, width), np.intp)
    weight = np.zeros((n_mels, width), np.float32)
    for j, nz in enumerate(nonzero):
        index[j, :len(nz)], weight[j, :len(nz)] = nz, fb[j, nz]
    return index, weight


@lru_cache(maxsize=8)
def _window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window centred in an n_fft frame."""
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win_length) / win_length)
    left = (n_fft - win_length) // 2
    return np.pad(w, (left, n_fft - win_length - left)).astype(np.float32)


@lru_cache(maxsize=8)
def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Orthonormal DCT-II (scipy.fft.dct(norm='ortho')), first n_out rows."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def _power_frames(wave: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """|STFT|^2 as (frames, 1 + n_fft // 2); frames centred as librosa does (zero padding)."""
    padded = np.pad(np.asarray(wave, dtype=np.float32), s.n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, s.n_fft)[::s.hop]
    spec = np.fft.rfft(frames * _window(s.win_length, s.n_fft), axis=1)
    return spec.real ** 2 + spec.imag ** 2


def power_spectrogram(wave: np.ndarray, s: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """|STFT|^2, (1 + n_fft // 2, frames)."""
    return _power_frames(wave, s).T


def log_mel(wave: np.ndarray, s: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """Log-mel spectrogram in dB (10 log10 of mel power), (n_mels, frames) float32."""
    index, weight = _sparse_filterbank(s.sample_rate, s.n_fft, s.n_mels, s.fmin, s.fmax)
    mel = np.einsum("tml,ml->mt", _power_frames(wave, s)[:, index], weight)
    return (10.0 * np.log10(np.maximum(mel, s.amin))).astype(np.float32)


def pitch_track(wave: np.ndarray, rate: int = SAMPLE_RATE, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency (Hz, 0 where unvoiced) and voicing strength (0-1) per
    frame, on the same centred frames as :func:`log_mel` (1 + samples // hop).

    YIN (de Cheveigne & Kawahara 2002) without its refinement steps, at half the
    sample rate (speaking pitch is far below 4 kHz): the difference function of
    each 40 ms frame against itself shifted by every lag of the speaking range,
    from one FFT correlation per frame, cumulative-mean normalised (CMNDF); the
    period is the first local minimum below YIN_THRESHOLD (else the deepest),
    refined by a parabola. ~4 ms per 3 s clip on one thread (about twice the log-mels).
    """
    if rate % 2 or hop % 2:
        raise ValueError(f"pitch_track needs an even sample rate and hop, not {rate} Hz / {hop}")
    frames = 1 + len(wave) // hop
    wave = np.asarray(wave, dtype=np.float64)  # numpy's float32 FFTs are ~5x slower than float64 (numpy 2.4)
    wave = np.pad(wave, (0, len(wave) % 2))
    half = (wave[0::2] + wave[1::2]) * 0.5  # 2-tap low-pass, then every other sample
    rate, hop = rate // 2, hop // 2
    frame = int(PITCH_FRAME * rate / SAMPLE_RATE) & ~1
    lag_lo, lag_hi = int(rate / PITCH_RANGE_HZ[1]), int(np.ceil(rate / PITCH_RANGE_HZ[0]))
    span = frame - lag_hi - 1  # samples compared at every lag (up to lag_hi + 1, for the parabola)
    padded = np.pad(half, frame // 2)
    x = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(padded, frame)[::hop][:frames])  # (T, frame)
    # Lags up to lag_hi + 1 only reach sample span + lag_hi < frame: a frame-long FFT does not wrap.
    cross = np.fft.irfft(np.fft.rfft(x) * np.conj(np.fft.rfft(x[:, :span], frame)), frame)[:, :lag_hi + 2]
    energy = np.concatenate([[0.0], np.cumsum(padded * padded)])
    lags = np.arange(lag_hi + 2)
    at = np.arange(len(x))[:, None] * hop + lags[None, :]
    shifted = energy[at + span] - energy[at]  # (T, lags): sum of x^2 over the span shifted by each lag
    diff = np.maximum(shifted[:, :1] + shifted - 2 * cross, 0.0)
    cmndf = np.ones_like(diff)
    cmndf[:, 1:] = diff[:, 1:] * lags[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    inner = cmndf[:, lag_lo:lag_hi + 1]
    dips = (inner <= cmndf[:, lag_lo - 1:lag_hi]) & (inner <= cmndf[:, lag_lo + 1:lag_hi + 2])
    first = dips & (inner < YIN_THRESHOLD)
    pick = np.where(first.any(axis=1), first.argmax(axis=1), inner.argmin(axis=1)) + lag_lo
    rows = np.arange(len(x))
    a, b, c = cmndf[rows, pick - 1], cmndf[rows, pick], cmndf[rows, pick + 1]
    curve = a - 2 * b + c
    offset = np.where(curve > 1e-9, 0.5 * (a - c) / np.where(curve > 1e-9, curve, 1.0), 0.0)
    period = pick + np.clip(offset, -0.5, 0.5)
    depth = np.clip(b, 0.0, 1.0)
    voiced = (depth < VOICED_BELOW) & (shifted[:, 0] > 1e-8 * span)  # periodic and not digital silence
    f0 = np.where(voiced, rate / period, 0.0)
    return f0.astype(np.float32), np.where(voiced, 1.0 - depth, 0.0).astype(np.float32)


def prosody_rows(wave: np.ndarray, s: FeatureSettings) -> np.ndarray:
    """(PROSODY_ROWS, frames): pitch in semitones above PITCH_REF_HZ (0 when unvoiced) and voicing."""
    f0, voicing = pitch_track(wave, s.sample_rate, s.hop)
    semitones = np.where(f0 > 0, 12.0 * np.log2(np.maximum(f0, 1.0) / PITCH_REF_HZ), 0.0)
    return np.stack([semitones, voicing]).astype(np.float32)


def features(wave: np.ndarray, s: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """The model's features for a prepared clip: (n_features, frames) float32."""
    lm = log_mel(wave, s)
    spectral = np.einsum("cm,mt->ct", _dct_matrix(s.n_mfcc, s.n_mels), lm) if s.kind == "mfcc" else lm
    return np.concatenate([spectral, prosody_rows(wave, s)]) if s.prosody else spectral


def silence_column(s: FeatureSettings = FeatureSettings()) -> np.ndarray:
    """The feature vector of a frame of digital silence: what padding looks like."""
    floor = np.full((s.n_mels, 1), 10.0 * np.log10(s.amin), np.float32)
    column = _dct_matrix(s.n_mfcc, s.n_mels) @ floor if s.kind == "mfcc" else floor
    return np.concatenate([column, np.zeros((PROSODY_ROWS, 1), np.float32)]) if s.prosody else column


def fit_frames(feat: np.ndarray, n: int, start: int | None = None, pad: np.ndarray | None = None) -> np.ndarray:
    """Crop (at ``start``, default centre) or centre-pad ``feat`` to ``n`` frames."""
    t = feat.shape[1]
    if t >= n:
        start = (t - n) // 2 if start is None else start
        return feat[:, start:start + n]
    left = (n - t) // 2 if start is None else start
    out = np.repeat(pad if pad is not None else feat[:, :1] * 0, n, axis=1)
    out[:, left:left + t] = feat
    return out


def windows(feat: np.ndarray, s: FeatureSettings = FeatureSettings(), hop_seconds: float | None = None) -> np.ndarray:
    """Fixed-length model inputs (W, 1, n_features, clip_frames) covering a clip.

    A clip up to one window long gives one centred window (as validation does in
    training); a longer one gives windows ``hop_seconds`` apart (default: half a
    window), the last aligned with the clip's end. Their predictions are averaged.
    """
    n = s.clip_frames
    t = feat.shape[1]
    pad = silence_column(s)
    if t <= n:
        return fit_frames(feat, n, pad=pad)[None, None]
    hop = max(1, int(round((hop_seconds or s.clip_seconds / 2) * s.sample_rate / s.hop)))
    starts = list(range(0, t - n + 1, hop))
    if starts[-1] != t - n:
        starts.append(t - n)
    return np.stack([feat[:, i:i + n] for i in starts])[:, None]

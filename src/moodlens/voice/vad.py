"""Voice activity: which stretches of a recording hold speech.

Two detectors feed the same span logic (:func:`spans_from_mask`):

- ``silero`` (the default): Silero VAD v6, a small LSTM network that scores
  each 32 ms frame at 16 kHz (MIT licence, bundled as ``weights/silero_vad.onnx``
  from the PyPI wheel silero-vad 6.2.3; provenance in ``weights/silero_vad.md``).
  It tells speech from music, noise and breath, which a level threshold cannot.
- ``energy``: frames louder than the noise floor (no model; fooled by music
  and steady noise, but it finds the utterances of one speaker in a quiet room).

The bundled graph is Silero's "sequence" export: one call scores a block of
frames, each given with the 64 samples before it, and the LSTM state (h, c)
is carried from block to block, so the whole recording is scored in a few
onnxruntime calls instead of a Python loop over frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelError
from ..runtime import onnx_session

RATE = 16000  # Hz: the only rate the bundled graph takes
FRAME = 512  # samples: 32 ms per speech probability
CONTEXT = 64  # samples of the previous frame each frame is given
BLOCK = 512  # frames per onnxruntime call (~16 s of audio)
ONSET = 0.5  # speech probability that starts a speech run ...
OFFSET = 0.35  # ... and the probability it must fall below to end it (hysteresis)
WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "silero_vad.onnx"


class SileroVAD:
    """Speech probability of every 32 ms frame of 16 kHz mono audio.

    >>> vad = SileroVAD()
    >>> p = vad.probabilities(wave)          # (ceil(len(wave) / 512),)
    >>> speech = hysteresis(p)               # boolean per frame
    """

    def __init__(self, path: str | Path = WEIGHTS, threads: int = 1):
        path = Path(path)
        self.session = onnx_session(path, max(1, threads))
        names = {i.name for i in self.session.get_inputs()}
        if names != {"input", "h", "c"}:
            raise ModelError(f"{path}: not Silero's sequence VAD graph (inputs {sorted(names)}, "
                             f"expected c, h, input)")

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        """(n_frames,) float32 speech probabilities; the last frame is zero-padded."""
        wave = np.asarray(wave, np.float32).reshape(-1)
        n = -(-len(wave) // FRAME)
        if n == 0:
            return np.zeros(0, np.float32)
        padded = np.zeros(CONTEXT + n * FRAME, np.float32)  # zeros before the first frame, as at a stream's start
        padded[CONTEXT:CONTEXT + len(wave)] = wave
        # row i = the 64 samples before frame i, then frame i: strided view, copied per block
        rows = np.lib.stride_tricks.sliding_window_view(padded, CONTEXT + FRAME)[::FRAME][:n]
        h = np.zeros((1, 1, 128), np.float32)
        c = np.zeros((1, 1, 128), np.float32)
        out = []
        for start in range(0, n, BLOCK):
            block = np.ascontiguousarray(rows[start:start + BLOCK])
            p, h, c = self.session.run(["speech_probs", "hn", "cn"], {"input": block, "h": h, "c": c})
            out.append(np.asarray(p, np.float32).reshape(-1))
        return np.concatenate(out)


def hysteresis(p: np.ndarray, onset: float = ONSET, offset: float = OFFSET) -> np.ndarray:
    """Speech per frame: a run starts where ``p`` reaches ``onset`` and lasts
    until it drops below ``offset``, so a dip inside a word does not split it."""
    speech = np.zeros(len(p), bool)
    on = False
    for i, v in enumerate(p):
        on = v >= offset if on else v >= onset
        speech[i] = on
    return speech


def spans_from_mask(mask: np.ndarray, hop: int, n_samples: int, min_speech: float, min_silence: float,
                    pad: float, max_segment: float, rate: int) -> list[tuple[int, int]]:
    """(start, stop) sample ranges from a per-frame speech mask (frames ``hop`` samples apart).

    Pauses shorter than ``min_silence`` s are closed, then runs shorter than
    ``min_speech`` s dropped (clicks, breaths); each run gets ``pad`` s of
    context and is cut into equal parts of at most ``max_segment`` s.
    """
    fps = rate / hop
    merged: list[list[int]] = []
    for a, b in runs(mask):
        if merged and a - merged[-1][1] < min_silence * fps:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    spans = []
    pad_n, max_len = int(pad * rate), int(max_segment * rate)
    for a, b in merged:
        if b - a < min_speech * fps:
            continue
        start, stop = max(0, a * hop - pad_n), min(n_samples, b * hop + pad_n)
        parts = max(1, int(np.ceil((stop - start) / max_len)))
        edges = np.linspace(start, stop, parts + 1).astype(int)
        spans.extend(zip(edges[:-1].tolist(), edges[1:].tolist()))
    return spans


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a boolean array."""
    edges = np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))

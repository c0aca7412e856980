"""How well each voice activity detector keeps silence, noise and music out of
long recordings, and what that does to the emotion timeline.

    python benchmarks/vad_benchmark.py                 # 4 conditions x 8 recordings, ~2 min
    python benchmarks/vad_benchmark.py --recordings 20 --seed 1

Long recordings are built from RAVDESS actors 17-20 (speakers the bundled voice
models never trained on): 6 clips each, in random order, with 1.5-3 s between
and around them, under four conditions:

- quiet: room noise at -60 dBFS between the clips;
- noise: pink noise under everything at 10 dB SNR (to the speech's active level);
- music gaps: synthetic music (chords, bass, drums) at the speech's level between the clips;
- music bed: the same music under everything at 10 dB SNR.

The truth is each clip's utterance (its first to last frame within 30 dB of the
clip's loudest, before mixing). Each detector (``silero``, the default;
``energy``, the old one; ``webrtc``, py-webrtcvad at aggressiveness 2, when
installed) gives speech spans through the same span logic (``VoiceOptions``:
0.5 s minimum speech, 0.4 s pauses closed, 0.1 s padding, 6 s maximum); then:

- recall: share of utterance time inside the spans; false alarm: share of the
  time outside utterances inside the spans;
- segments: spans found; off-speech: spans that are mostly not speech (each is
  a timeline entry labelling music or noise with an emotion);
- emotion accuracy of the spans that are mostly speech (bundled default voice
  model, the clip's label as the truth), and of all spans (off-speech ones wrong);
- speed: the detector's time per minute of audio on one thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402

from common import SHARED, require_shared, table  # noqa: E402
from moodlens.data.ravdess import load_ravdess  # noqa: E402
from moodlens.errors import InputError  # noqa: E402
from moodlens.voice.audio import frame_db, prepare_clip, read_wave  # noqa: E402
from moodlens.voice.recognizer import VoiceOptions, VoiceRecognizer, speech_segments  # noqa: E402
from moodlens.voice.vad import OFFSET, ONSET, spans_from_mask  # noqa: E402

SR = 16000
CONDITIONS = ("quiet", "noise", "music gaps", "music bed")


def active_level(clip: np.ndarray) -> float:
    """RMS (linear) of the frames within 30 dB of the clip's loudest."""
    db = frame_db(clip)
    return float(np.sqrt(np.mean(10 ** (db[db > db.max() - 30] / 10))))


def utterance(clip: np.ndarray) -> tuple[int, int]:
    """(start, stop) samples from the first to the last frame within 30 dB of the loudest."""
    db = frame_db(clip)
    on = np.flatnonzero(db > db.max() - 30)
    return int(on[0] * 160), int(min(len(clip), on[-1] * 160 + 400))


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    y = np.fft.irfft(spectrum, n)
    return (y / y.std()).astype(np.float32)


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """120 bpm: a chord of harmonic tones and a bass note per beat, kick on 1 and 3, hi-hat on every half beat."""
    beat = SR // 2
    out = np.zeros(n + beat, np.float32)
    t = np.arange(beat) / SR
    for i, start in enumerate(range(0, n, beat)):
        root = 220.0 * 2 ** (rng.choice([0, 3, 5, 7, 10]) / 12)
        chord = sum(np.sin(2 * np.pi * root * r * h * t + rng.uniform(0, 6)) / h ** 1.5
                    for r in (1.0, 1.26, 1.5) for h in range(1, 6))
        bass = np.sin(2 * np.pi * root / 4 * t)
        piece = 0.5 * chord * np.minimum(1, t / 0.02) * np.exp(-2 * t) + 0.8 * bass * np.exp(-4 * t)
        if i % 2 == 0:  # kick: a falling sine
            piece += 1.5 * np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-30 * t)) / 30)) * np.exp(-25 * t)
        hat = np.diff(rng.standard_normal(beat // 2 + 1)) * np.exp(-60 * t[: beat // 2])
        piece[: beat // 2] += 0.3 * hat
        piece[beat // 2:] += 0.3 * hat[: beat - beat // 2]
        out[start:start + beat] += piece
    out = out[:n]
    return (out / out.std()).astype(np.float32)


def build(clips: list[tuple[np.ndarray, str]], condition: str, rng: np.random.Generator
          ) -> tuple[np.ndarray, list[tuple[int, int, str]]]:
    """A recording and its utterances (start, stop, label)."""
    parts, truth, pos = [], [], 0
    speech_rms = np.median([active_level(c) for c, _ in clips])
    for clip, label in clips:
        gap = int(rng.uniform(1.5, 3.0) * SR)
        filler = music(gap, rng) * speech_rms if condition == "music gaps" else np.zeros(gap, np.float32)
        parts += [filler, clip]
        a, b = utterance(clip)
        truth.append((pos + gap + a, pos + gap + b, label))
        pos += gap + len(clip)
    tail = int(rng.uniform(1.5, 3.0) * SR)
    parts.append(music(tail, rng) * speech_rms if condition == "music gaps" else np.zeros(tail, np.float32))
    wave = np.concatenate(parts)
    if condition == "quiet":
        wave += 10 ** (-60 / 20) * rng.standard_normal(len(wave)).astype(np.float32)
    elif condition == "noise":
        wave += pink_noise(len(wave), rng) * speech_rms * 10 ** (-10 / 20)
    elif condition == "music bed":
        wave += music(len(wave), rng) * speech_rms * 10 ** (-10 / 20)
    return wave.astype(np.float32), truth


def webrtc_spans(wave: np.ndarray, opts: VoiceOptions) -> list[tuple[int, int]]:
    import webrtcvad

    vad, frame = webrtcvad.Vad(2), 480  # 30 ms
    pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16)
    mask = np.array([vad.is_speech(pcm[i:i + frame].tobytes(), SR) for i in range(0, len(pcm) - frame + 1, frame)])
    return spans_from_mask(mask, frame, len(wave), opts.min_speech, opts.min_silence, opts.pad, opts.max_segment, SR)


def score(spans, truth, n: int, rec: VoiceRecognizer, wave: np.ndarray) -> dict:
    is_speech = np.zeros(n, bool)
    for a, b, _ in truth:
        is_speech[a:b] = True
    found = np.zeros(n, bool)
    for a, b in spans:
        found[a:b] = True
    off, right, on_speech = 0, 0, 0
    for a, b in spans:
        overlaps = [max(0, min(b, tb) - max(a, ta)) for ta, tb, _ in truth]
        k = int(np.argmax(overlaps))
        if overlaps[k] < 0.5 * (b - a):
            off += 1
            continue
        on_speech += 1
        try:
            p = rec.classify_clip(prepare_clip(wave[a:b], "segment", SR))
            right += rec.labels[int(p.argmax())] == truth[k][2]
        except InputError:
            pass  # a span that is all breath once trimmed: counted as wrong
    return {"speech": int(is_speech.sum()), "hit": int((found & is_speech).sum()),
            "silence": int((~is_speech).sum()), "false": int((found & ~is_speech).sum()),
            "segments": len(spans), "off": off, "on": on_speech, "right": right}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=8, help="recordings per condition (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--actors", nargs="+", default=["17", "18", "19", "20"],
                    help="RAVDESS actors whose clips are used (default: %(default)s, never trained on)")
    ap.add_argument("--onset", type=float, default=ONSET, help="silero onset probability (default: %(default)s)")
    ap.add_argument("--offset", type=float, default=OFFSET, help="silero offset probability (default: %(default)s)")
    args = ap.parse_args()
    silero = VoiceOptions(vad="silero", vad_onset=args.onset, vad_offset=args.offset)

    items = [i for i in load_ravdess(require_shared(SHARED / "ravdess"), ("speech",))
             if i.speaker in args.actors]
    rng = np.random.default_rng(args.seed)
    rec = VoiceRecognizer("default")
    detectors = ["silero", "energy"]
    try:
        import webrtcvad  # noqa: F401

        detectors.append("webrtc")
    except ImportError:
        print("(py-webrtcvad not installed: pip install webrtcvad-wheels to compare it)\n")
    totals = {(c, d): {} for c in CONDITIONS for d in detectors}
    seconds = {d: 0.0 for d in detectors}
    audio_seconds = 0.0
    for condition in CONDITIONS:
        for _ in range(args.recordings):
            picked = rng.choice(len(items), 6, replace=False)
            clips = [(read_wave(items[i].path, SR), items[i].label) for i in picked]
            wave, truth = build(clips, condition, rng)
            audio_seconds += len(wave) / SR
            for d in detectors:
                t0 = time.perf_counter()
                if d == "webrtc":
                    spans = webrtc_spans(wave, VoiceOptions())
                else:
                    opts = silero if d == "silero" else VoiceOptions(vad=d)
                    spans = speech_segments(wave, SR, opts, "recording", rec.vad)
                seconds[d] += time.perf_counter() - t0
                for k, v in score(spans, truth, len(wave), rec, wave).items():
                    totals[condition, d][k] = totals[condition, d].get(k, 0) + v
    rows = []
    for (condition, d), s in totals.items():
        rows.append({"condition": condition, "detector": d, "recall": f"{s['hit'] / s['speech']:.3f}",
                     "false alarm": f"{s['false'] / s['silence']:.3f}", "segments": s["segments"],
                     "off-speech segments": s["off"],
                     "emotion acc (speech segments)": f"{s['right'] / max(1, s['on']):.3f}",
                     "emotion acc (all segments)": f"{s['right'] / max(1, s['segments']):.3f}"})
    utterances = 6 * args.recordings
    print(f"## Speech in long recordings: {args.recordings} recordings x {len(CONDITIONS)} conditions, "
          f"{utterances} utterances each (RAVDESS actors {' '.join(args.actors)}), seed {args.seed}, "
          f"silero onset {args.onset} offset {args.offset}\n")
    print(table(rows))
    print(f"\n## Detector time on one thread ({audio_seconds / 60:.1f} min of audio)\n")
    print(table([{"detector": d, "ms per minute of audio": f"{1000 * seconds[d] / (audio_seconds / 60):.0f}"}
                 for d in detectors]))


if __name__ == "__main__":
    main()

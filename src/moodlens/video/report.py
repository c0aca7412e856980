"""What a processed video adds up to: per-track statistics, the summary
record (written last, it is also the "outputs complete" marker), a text
rendering, and the PNG plot of scores over time (matplotlib, optional)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import require
from ..results import FaceResult
from .outputs import PendingFile

SUMMARY_VERSION = 1  # bump when the summary's fields change meaning
MAX_PLOTTED_TRACKS = 6  # the longest tracks get a panel each; more would be unreadable


@dataclass
class TrackedFace(FaceResult):
    """A face on one frame of a video: the smoothed scores of its track."""

    track: int = 0  # stable track id
    detected: bool = False  # True when the detector placed the box on this frame (else it was followed)


@dataclass
class TrackStats:
    id: int
    first_frame: int
    first_time: float
    last_frame: int = 0
    last_time: float = 0.0
    frames: int = 0  # frames the face was shown on
    labels: Counter = field(default_factory=Counter)  # frames per shown label
    score_sum: np.ndarray | None = None
    series: list = field(default_factory=list)  # (time, scores) per frame, for the plot

    def add(self, index: int, t: float, face: TrackedFace, scores: np.ndarray, keep_series: bool) -> None:
        self.last_frame, self.last_time = index, t
        self.frames += 1
        self.labels[face.label] += 1
        self.score_sum = scores.copy() if self.score_sum is None else self.score_sum + scores
        if keep_series:
            self.series.append((t, scores))

    def to_dict(self, labels: tuple[str, ...], fps: float) -> dict:
        mean = self.score_sum / max(1, self.frames)
        return {
            "track": self.id,
            "first_frame": self.first_frame, "last_frame": self.last_frame,
            "start_s": round(self.first_time, 3), "end_s": round(self.last_time, 3),
            # a face shown on frames a..b was on screen for (b - a + 1) frame intervals
            "duration_s": round(self.last_time - self.first_time + 1.0 / fps, 3),
            "frames": self.frames,
            "dominant": self.labels.most_common(1)[0][0],
            "share": {k: round(self.labels.get(k, 0) / self.frames, 4) for k in labels},
            "mean_scores": {k: round(float(v), 4) for k, v in zip(labels, mean)},
        }


class TrackBook:
    """Accumulates per-track statistics frame by frame."""

    def __init__(self, labels: tuple[str, ...], keep_series: bool):
        self.labels = labels
        self.keep_series = keep_series
        self.tracks: dict[int, TrackStats] = {}

    def add(self, index: int, t: float, faces: list[TrackedFace]) -> None:
        for f in faces:
            st = self.tracks.get(f.track)
            if st is None:
                st = self.tracks[f.track] = TrackStats(f.track, index, t)
            st.add(index, t, f, np.array([f.scores[k] for k in self.labels]), self.keep_series)

    def summaries(self, fps: float) -> list[dict]:
        return [st.to_dict(self.labels, fps) for st in sorted(self.tracks.values(), key=lambda s: s.id)]


def summary_text(summary: dict) -> str:
    """A few readable lines for the terminal."""
    head = f"{summary['source']}: "
    if summary.get("error"):
        return head + f"ERROR {summary['error']}"
    n = len(summary["tracks"])
    head += f"{summary['frames']} frame{'s' if summary['frames'] != 1 else ''}, {summary['duration_s']:.1f} s, "
    head += f"{n} track{'s' if n != 1 else ''}" if n else "no face found"
    if summary.get("interrupted"):
        head += " (interrupted)"
    lines = [head]
    for tr in summary["tracks"]:
        shares = sorted(tr["share"].items(), key=lambda kv: -kv[1])
        top = "  ".join(f"{k} {v:.0%}" for k, v in shares if v >= 0.005)[:80]
        span = f"{tr['start_s']:.2f}-{tr['end_s']:.2f} s"
        lines.append(f"  track {tr['track']:<3} {span:<17} {top}")
    lines += [f"  warning: {w}" for w in summary.get("warnings", [])]
    return "\n".join(lines)


def save_plot(target: str | Path, book: TrackBook, title: str, fps: float) -> Path:
    """Scores over time, one panel per track (the longest first). Gaps where a
    face was not shown break the lines instead of joining across them."""
    require("matplotlib", "train")
    from matplotlib.figure import Figure  # no pyplot: a Jupyter session's backend stays as it is

    from ..writers import COLOURS

    tracks = sorted(book.tracks.values(), key=lambda s: -s.frames)[:MAX_PLOTTED_TRACKS]
    tracks.sort(key=lambda s: s.id)
    fig = Figure(figsize=(9, 2.2 * len(tracks) + 0.6))
    axes = fig.subplots(len(tracks), 1, sharex=True, squeeze=False)
    for ax, st in zip(axes[:, 0], tracks):
        times, scores = [], []
        for t, s in st.series:
            if times and t - times[-1] > 2.5 / fps:
                times.append(math.nan)
                scores.append(np.full_like(s, math.nan))
            times.append(t)
            scores.append(s)
        scores = np.array(scores)
        for k, label in enumerate(book.labels):
            b, g, r = COLOURS.get(label, (128, 128, 128))
            ax.plot(times, scores[:, k], color=(r / 255, g / 255, b / 255), lw=1.4, label=label)
        dominant = st.labels.most_common(1)[0][0]
        ax.set_title(f"track {st.id}: {st.frames / fps:.1f} s shown, mostly {dominant}", fontsize=9, loc="left")
        ax.set_ylim(0, 1)
        ax.set_ylabel("score")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle(title, fontsize=10, y=0.995)
    fig.tight_layout()
    pending = PendingFile(target)
    try:
        fig.savefig(pending.path, format="png", dpi=110)
        return pending.commit()
    except BaseException:
        pending.discard()
        raise

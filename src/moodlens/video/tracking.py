"""Face tracks across frames: IoU matching of detections, template following
between detections, and per-track smoothing of the emotion scores.

Boxes here are float (x, y, w, h) in the coordinates of the (downscaled)
detection image; the pipeline maps them to the full frame.

Why template matching between detections: the detector is the slow stage
(Haar ~40 ms on a 320-pixel-wide frame), while normalised cross-correlation
of a face patch no bigger than :data:`TEMPLATE_SIDE` pixels in a window
around its last position costs well under a millisecond, so detecting every
Nth frame and following in between keeps live video at camera rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

TEMPLATE_SIDE = 32  # pixels: following runs at a scale where the face patch is at most this big
SEARCH_MARGIN = 0.5  # search window = box grown by this fraction of its side on every edge
MIN_MATCH = 0.5  # normalised correlation below this means the face was lost on this frame


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def suppress_overlaps(boxes, threshold: float = 0.5) -> list[int]:
    """Indices of the boxes to keep: the larger of two boxes that mostly cover
    each other. Haar often adds a second box on the lower half of a face it
    already found; as a separate detection it would start a second track on
    the same face."""
    kept: list[int] = []
    for i in sorted(range(len(boxes)), key=lambda i: -boxes[i][2] * boxes[i][3]):
        if all(_cover(boxes[i], boxes[k]) < threshold for k in kept):
            kept.append(i)
    return sorted(kept)  # detector order, so new ids follow it


def _cover(small, big) -> float:
    """Fraction of ``small``'s area inside ``big``."""
    ix = max(0.0, min(small[0] + small[2], big[0] + big[2]) - max(small[0], big[0]))
    iy = max(0.0, min(small[1] + small[3], big[1] + big[3]) - max(small[1], big[1]))
    return ix * iy / max(1e-9, small[2] * small[3])


class ScoreSmoother:
    """Scores over time -> steadier scores and a label that does not flicker.

    ``ema``: exponential moving average, ``alpha`` = weight of the newest frame.
    ``window``: mean of the last ``window`` frames. ``off``: raw scores.
    With smoothing on, the label changes only when another emotion leads the
    current one by ``margin`` (hysteresis), so two emotions scoring nearly the
    same do not swap the label every frame."""

    def __init__(self, mode: str = "ema", alpha: float = 0.3, window: int = 8, margin: float = 0.05):
        if mode not in ("ema", "window", "off"):
            raise ValueError(f"unknown smoothing {mode!r}; use ema, window or off")
        if not 0 < alpha <= 1:
            raise ValueError(f"smoothing alpha must be in (0, 1], got {alpha}")
        if window < 1:
            raise ValueError(f"smoothing window must be >= 1 frame, got {window}")
        self.mode, self.alpha, self.margin = mode, alpha, (margin if mode != "off" else 0.0)
        self._recent: deque[np.ndarray] = deque(maxlen=window)
        self.value: np.ndarray | None = None
        self.label_index: int | None = None

    def update(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, np.float64)
        if self.mode == "ema":
            self.value = probs.copy() if self.value is None else self.alpha * probs + (1 - self.alpha) * self.value
        elif self.mode == "window":
            self._recent.append(probs)
            self.value = np.mean(self._recent, axis=0)
        else:
            self.value = probs
        top = int(self.value.argmax())
        if self.label_index is None or self.value[top] > self.value[self.label_index] + self.margin:
            self.label_index = top
        return self.value


@dataclass
class TrackerOptions:
    iou: float = 0.3  # least overlap for a detection to continue a track
    max_missed_s: float = 1.0  # seconds without a matching detection before a track ends
    min_hits: int = 2  # detections before a new track is shown (drops one-off false faces)


@dataclass
class Track:
    id: int  # stable id 1, 2, ... given when the track is confirmed; 0 while tentative
    box: tuple[float, float, float, float]  # (x, y, w, h) in detection-image pixels
    smoother: ScoreSmoother
    hits: int = 1  # detections matched so far
    last_detected: float = 0.0  # time (s) of the last matching detection
    visible: bool = True  # placed on the current frame (by detection or following)
    detected: bool = True  # placed by the detector on the current frame
    angle: float = 0.0  # eye-line tilt (degrees) at the last detection, for aligning the crop
    _template: np.ndarray | None = field(default=None, repr=False)
    _tscale: float = 1.0  # template scale relative to the detection image
    _offset: tuple[int, int] = (0, 0)  # where a template clipped at the image edge sits inside the box

    def set_template(self, gray: np.ndarray) -> None:
        x, y, w, h = (int(round(v)) for v in self.box)
        x0, y0 = max(0, x), max(0, y)
        patch = gray[y0:y + h, x0:x + w]
        if patch.shape[0] < 8 or patch.shape[1] < 8:
            self._template = None
            return
        self._tscale = min(1.0, TEMPLATE_SIDE / max(w, h))
        if self._tscale < 1.0:
            patch = cv2.resize(patch, None, fx=self._tscale, fy=self._tscale, interpolation=cv2.INTER_AREA)
        self._template = patch
        self._offset = (x0 - x, y0 - y)

    def follow(self, gray: np.ndarray) -> bool:
        """Move the box to where its template matches best nearby."""
        if self._template is None:
            return False
        x, y, w, h = self.box
        m = SEARCH_MARGIN * max(w, h)
        H, W = gray.shape
        rx0, ry0 = int(max(0, x - m)), int(max(0, y - m))
        rx1, ry1 = int(min(W, x + w + m)), int(min(H, y + h + m))
        s = self._tscale
        region = gray[ry0:ry1, rx0:rx1]
        if s < 1.0 and region.size:
            region = cv2.resize(region, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        th, tw = self._template.shape
        if region.shape[0] < th or region.shape[1] < tw:
            return False
        scores = cv2.matchTemplate(region, self._template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(scores)
        if best < MIN_MATCH:
            return False
        ox, oy = self._offset
        self.box = (rx0 + bx / s - ox, ry0 + by / s - oy, w, h)
        return True


class Tracker:
    """Greedy IoU matching of detections to tracks, tolerant of short misses."""

    def __init__(self, options: TrackerOptions | None = None, smoother=lambda: ScoreSmoother()):
        self.options = options or TrackerOptions()
        self.make_smoother = smoother
        self.tracks: list[Track] = []
        self.next_id = 1

    def update(self, detections: list[tuple[float, float, float, float]], gray: np.ndarray, t: float,
               angles: list[float] | None = None) -> None:
        """A frame the detector ran on (boxes, and the faces' eye-line tilts if
        known). Unmatched tracks try to follow their template."""
        kept = suppress_overlaps(detections)
        angles = [angles[i] if angles else 0.0 for i in kept]
        detections = [detections[i] for i in kept]
        pairs = sorted(((iou(tr.box, d), i, j) for i, tr in enumerate(self.tracks) for j, d in enumerate(detections)),
                       reverse=True)
        used_t, used_d = set(), set()
        for score, i, j in pairs:
            if score < self.options.iou:
                break
            if i in used_t or j in used_d:
                continue
            used_t.add(i)
            used_d.add(j)
            tr = self.tracks[i]
            tr.box, tr.hits, tr.last_detected = tuple(map(float, detections[j])), tr.hits + 1, t
            tr.angle = angles[j]
            tr.visible = tr.detected = True
            tr.set_template(gray)
        for i, tr in enumerate(self.tracks):  # in order of appearance, so ids follow it too
            if i not in used_t:
                tr.detected = False
                tr.visible = tr.follow(gray)
            elif tr.id == 0 and tr.hits >= self.options.min_hits:
                tr.id, self.next_id = self.next_id, self.next_id + 1
        # A tentative track not detected again was a one-off (often a false
        # face); a confirmed one survives misses for max_missed_s.
        self.tracks = [tr for i, tr in enumerate(self.tracks)
                       if i in used_t or (tr.id and t - tr.last_detected <= self.options.max_missed_s)]
        for j, d in enumerate(detections):
            if j not in used_d:
                tr = Track(0, tuple(map(float, d)), self.make_smoother(), last_detected=t, angle=angles[j])
                tr.set_template(gray)
                if self.options.min_hits <= 1:
                    tr.id, self.next_id = self.next_id, self.next_id + 1
                self.tracks.append(tr)

    def follow(self, gray: np.ndarray, t: float) -> None:
        """A frame between detections: every track follows its template."""
        for tr in self.tracks:
            tr.detected = False
            tr.visible = tr.follow(gray)
        self.tracks = [tr for tr in self.tracks if t - tr.last_detected <= self.options.max_missed_s]

    def shown(self) -> list[Track]:
        """Confirmed tracks placed on the current frame."""
        return [tr for tr in self.tracks if tr.visible and tr.id]

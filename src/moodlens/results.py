"""Result records returned by the recognisers; ``to_dict()`` gives plain JSON types."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Box:
    x: int  # left edge, pixels in the original image
    y: int  # top edge
    w: int  # width
    h: int  # height

    def to_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]

    def clipped(self, width: int, height: int) -> "Box":
        """The part of the box inside a width x height image."""
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(width, self.x + self.w), min(height, self.y + self.h)
        return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


@dataclass
class FaceResult:
    box: Box | None  # None when the input was already a face crop (--no-detect)
    label: str  # most likely emotion (canonical name)
    score: float  # its probability
    scores: dict[str, float]  # probability of every label the model knows
    source: str = ""  # file the face came from, if any
    detector_score: float | None = None  # detector confidence, when the detector gives one
    # (x, y) pixels of right eye, left eye, nose tip, mouth centre, right ear, left ear
    # (the person's right: the image's left), when the detector gives them
    keypoints: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict:
        out = {
            "source": self.source,
            "box": None if self.box is None else self.box.to_list(),
            "label": self.label,
            "score": round(self.score, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }
        if self.detector_score is not None:
            out["detector_score"] = round(self.detector_score, 4)
        if self.keypoints is not None:
            out["keypoints"] = [[round(x, 1), round(y, 1)] for x, y in self.keypoints]
        return out


@dataclass
class ImageResult:
    """Everything found in one input file: faces, or the reason there are none."""

    source: str  # the path (or "<array>")
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None  # set when the file could not be used
    size: tuple[int, int] | None = None  # (width, height) of the image

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_record(self) -> dict:
        """Every field in plain JSON types, unrounded: :meth:`from_record` gives
        back an equal result, so a stored or remote result prints exactly as a
        fresh one (the resume sidecars and the Ray engine rely on this)."""
        return {"source": self.source, "error": self.error, "size": None if self.size is None else list(self.size),
                "faces": [{"box": None if f.box is None else [int(v) for v in f.box.to_list()], "label": f.label, "score": float(f.score),
                           "scores": {k: float(v) for k, v in f.scores.items()}, "source": f.source,
                           "detector_score": None if f.detector_score is None else float(f.detector_score),
                           "keypoints": None if f.keypoints is None else [[float(x), float(y)] for x, y in f.keypoints]}
                          for f in self.faces]}

    @classmethod
    def from_record(cls, record: dict) -> "ImageResult":
        faces = [FaceResult(box=None if f["box"] is None else Box(*f["box"]), label=f["label"], score=f["score"],
                            scores=dict(f["scores"]), source=f["source"], detector_score=f["detector_score"],
                            keypoints=None if f["keypoints"] is None else tuple((x, y) for x, y in f["keypoints"]))
                 for f in record["faces"]]
        size = record.get("size")
        return cls(source=record["source"], faces=faces, error=record.get("error"),
                   size=None if size is None else (size[0], size[1]))


@dataclass
class Segment:
    """One stretch of speech in a long recording, classified on its own."""

    start: float  # seconds from the start of the input
    end: float  # seconds from the start of the input
    label: str  # most likely emotion
    score: float  # its probability
    scores: dict[str, float]  # probability of every label the model knows

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label,
                "score": round(self.score, 4), "scores": {k: round(v, 4) for k, v in self.scores.items()}}


@dataclass
class VoiceResult:
    """The emotion of one audio input; long recordings also get a timeline."""

    source: str  # the path (or "<array>")
    label: str | None = None  # most likely emotion over the whole input; None when error is set
    score: float = 0.0  # its probability
    scores: dict[str, float] = field(default_factory=dict)  # every label's probability (duration-weighted over segments)
    duration: float = 0.0  # seconds of audio in the input
    segments: list[Segment] = field(default_factory=list)  # per-segment results for long audio; [] for a clip
    error: str | None = None  # set when the input could not be used

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {"source": self.source, "status": "error" if self.error else "ok", "label": self.label,
                "score": round(self.score, 4), "scores": {k: round(v, 4) for k, v in self.scores.items()},
                "duration": round(self.duration, 3), "segments": [s.to_dict() for s in self.segments],
                "error": self.error}

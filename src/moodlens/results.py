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


@dataclass
class FaceResult:
    box: Box | None  # None when the input was already a face crop (--no-detect)
    label: str  # most likely emotion (canonical name)
    score: float  # its probability
    scores: dict[str, float]  # probability of every label the model knows
    source: str = ""  # file the face came from, if any
    detector_score: float | None = None  # detector confidence, when the detector gives one

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "box": None if self.box is None else self.box.to_list(),
            "label": self.label,
            "score": round(self.score, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
        }


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

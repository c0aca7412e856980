"""Response shapes of the web service, for validation and the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Problem(BaseModel):
    detail: str = Field(description="what was wrong with the request")


class Health(BaseModel):
    status: str
    version: str
    models: dict[str, str]
    policy: str
    streams: int = Field(description="live sessions open")
    pending: int = Field(description="requests running or waiting for a worker")


class Face(BaseModel):
    box: list[int] | None = Field(description="[x, y, width, height] in pixels of the uploaded image")
    label: str
    score: float
    scores: dict[str, float]


class FaceResponse(BaseModel):
    width: int
    height: int
    faces: list[Face]


class Segment(BaseModel):
    start: float
    end: float
    label: str
    score: float
    scores: dict[str, float]


class VoiceResponse(BaseModel):
    status: str
    label: str | None
    score: float
    scores: dict[str, float]
    duration: float = Field(description="seconds of audio")
    segments: list[Segment] = Field(description="speech segments of a long recording; empty for a clip")
    error: str | None = None


class Fused(BaseModel):
    label: str | None
    score: float
    scores: dict[str, float]
    modalities: list[str] = Field(description="modalities that contributed")
    weights: dict[str, float] = Field(description="effective weight of each (confidence x configured weight)")
    confidence: dict[str, float]
    notes: list[str] = Field(description="e.g. a modality missing or failed, and the other used alone")


class AnalyzedFace(Face):
    faces: int = Field(description="faces in the image; the largest is the one fused")


class AnalyzeResponse(BaseModel):
    status: str
    fused: Fused
    face: AnalyzedFace | None
    voice: VoiceResponse | None
    errors: dict[str, str] = Field(description="modality -> why its upload could not be used")

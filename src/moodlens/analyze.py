"""Face + voice analysis of one moment: an image and an audio clip, or a video
file with an audio track. ``Analyzer`` is the Python API behind
`moodlens analyze` and the web service's ``/v1/analyze``.

Each modality is run on its own and reported beside the fused result; a
modality that is missing or fails leaves the other one alone, and the output
says so (``notes`` and ``errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MoodlensError
from .fusion import Fused, FusionSettings, fuse
from .results import FaceResult, VoiceResult

VIDEO_SAMPLE_SECONDS = 0.2  # a video is read at 5 frames/s: moods change slower than that


@dataclass
class Analysis:
    source: dict[str, str]  # what was analysed: {"image": path, "audio": path} or {"video": path}
    face: dict | None  # the face used (largest), with "faces" = how many were found; None if no face result
    voice: dict | None  # the voice result; None if no voice result
    fused: Fused
    errors: dict[str, str] = field(default_factory=dict)  # modality -> why its input could not be used
    # (a modality that is merely absent, no face in the picture or no audio track, is a note in fused.notes)
    timeline: list[dict] = field(default_factory=list)  # video: fused mood per speech segment

    @property
    def ok(self) -> bool:
        return self.fused.label is not None

    def to_dict(self) -> dict:
        return {"source": self.source, "status": "ok" if self.ok else "error", "fused": self.fused.to_dict(),
                "face": self.face, "voice": self.voice, "errors": self.errors, "timeline": self.timeline}


def largest(faces: list[FaceResult]) -> FaceResult | None:
    """The face nearest the camera, i.e. the one fusion attributes the voice to."""
    boxed = [f for f in faces if f.box is not None]
    if not boxed:
        return faces[0] if faces else None
    return max(boxed, key=lambda f: f.box.w * f.box.h)


def face_summary(faces: list[FaceResult]) -> dict | None:
    chosen = largest(faces)
    return None if chosen is None else {**chosen.to_dict(), "faces": len(faces)}


class Analyzer:
    """Face and voice recognisers plus a fusion rule; models load on first use.

    >>> a = Analyzer()
    >>> r = a.analyze(image="me.jpg", audio="me.wav")
    >>> r.fused.label, r.face["label"], r.voice["label"]
    """

    def __init__(self, face_model: str = "default", voice_model: str = "default", detector: str = "blazeface",
                 threads: int = 1, fusion: FusionSettings | None = None):
        self.face_model, self.voice_model, self.detector, self.threads = face_model, voice_model, detector, threads
        self.fusion = fusion or FusionSettings()
        self._face = self._voice = None

    @property
    def faces(self):
        if self._face is None:
            from .face.recognizer import FaceRecognizer

            self._face = FaceRecognizer(self.face_model, self.detector, self.threads)
        return self._face

    @property
    def voices(self):
        if self._voice is None:
            from .voice.recognizer import VoiceRecognizer

            self._voice = VoiceRecognizer(self.voice_model, self.threads)
        return self._voice

    def analyze(self, image: str | Path | np.ndarray | None = None, audio: str | Path | np.ndarray | None = None,
                sample_rate: int | None = None, failed: dict[str, str] | None = None,
                names: dict[str, str] | None = None) -> Analysis:
        """Fuse an image (path or BGR array) and an audio clip (path or samples at
        ``sample_rate``); either may be None. Bad inputs never raise: they are
        reported in ``errors`` and the other modality is used alone. ``failed``:
        modality -> error for inputs the caller could not even decode; ``names``:
        "image"/"audio" -> what messages call an array input (default "<array>")."""
        source, errors, notes, names = {}, dict(failed or {}), [], names or {}
        if image is None and audio is None and not errors:
            raise ValueError("give an image, an audio clip, or both")
        face = voice = None
        if image is not None:
            source["image"] = names.get("image", "<array>") if isinstance(image, np.ndarray) else str(image)
            try:
                faces = self.faces.predict(image)
                face = face_summary(faces)
                if face is None:
                    notes.append(f"face missing: no face found in {source['image']}")
            except MoodlensError as exc:
                errors["face"] = str(exc)
        if audio is not None:
            source["audio"] = names.get("audio", "<array>") if isinstance(audio, np.ndarray) else str(audio)
            try:
                voice = self.voices.predict(audio, sample_rate=sample_rate, name=source["audio"]).to_dict()
            except MoodlensError as exc:
                errors["voice"] = str(exc)
        notes += [f"{modality} failed ({why})" for modality, why in errors.items()]
        return Analysis(source, face, voice, self._fuse(face, voice, notes), errors)

    def _fuse(self, face: dict | None, voice: dict | None, notes: list[str]) -> Fused:
        return fuse(face and face["scores"], voice and voice["scores"], self.fusion, notes)

    def analyze_video(self, path: str | Path, sample_seconds: float = VIDEO_SAMPLE_SECONDS) -> Analysis:
        """Faces from the pictures (the largest face, ``sample_seconds`` apart),
        voice from the audio track (segmented when long), fused overall and per
        speech segment. Needs PyAV for the audio track (the [video] extra)."""
        from .video.sources import VideoFileSource
        from .voice.audio import read_audio_track

        path = Path(path)
        errors, notes = {}, []
        face_times, face_probs = [], []
        try:
            with VideoFileSource(path) as video:
                step = max(1, round(video.fps * sample_seconds))
                for frame in video:
                    if frame.index % step:
                        continue
                    chosen = largest(self.faces.predict_array(frame.image, str(path)))
                    if chosen is not None:
                        face_times.append(frame.time)
                        face_probs.append([chosen.scores[l] for l in self.faces.labels])
            if not face_probs:
                notes.append(f"face missing: no face found in any sampled frame of {path}")
        except MoodlensError as exc:
            errors["face"] = str(exc)
        face = None
        if face_probs:
            mean = np.mean(face_probs, axis=0)
            k = int(mean.argmax())
            face = {"label": self.faces.labels[k], "score": round(float(mean[k]), 4),
                    "scores": {l: round(float(v), 4) for l, v in zip(self.faces.labels, mean)},
                    "frames_with_face": len(face_probs), "first_s": round(face_times[0], 3),
                    "last_s": round(face_times[-1], 3)}
        voice_result: VoiceResult | None = None
        try:
            wave = read_audio_track(path, self.voices.rate)
            if wave is None:
                notes.append(f"voice missing: {path} has no audio track")
            else:
                voice_result = self.voices.predict_wave(wave, str(path))
        except MoodlensError as exc:
            errors["voice"] = str(exc)
        notes += [f"{modality} failed ({why})" for modality, why in errors.items()]
        voice = voice_result.to_dict() if voice_result else None
        fused = self._fuse(face, voice, notes)
        timeline = self._timeline(voice_result, np.array(face_times), np.array(face_probs)) if voice_result else []
        return Analysis({"video": str(path)}, face, voice, fused, errors, timeline)

    def _timeline(self, voice: VoiceResult, times: np.ndarray, probs: np.ndarray) -> list[dict]:
        """One fused entry per speech segment (or one for a short clip), with the
        face scores averaged over the same span."""
        spans = [(s.start, s.end, s.scores) for s in voice.segments] or [(0.0, voice.duration, voice.scores)]
        rows = []
        for start, end, voice_scores in spans:
            inside = (times >= start) & (times <= end) if len(times) else np.zeros(0, bool)
            face_scores = None
            if inside.any():
                mean = probs[inside].mean(axis=0)
                face_scores = {l: float(v) for l, v in zip(self.faces.labels, mean)}
            f = fuse(face_scores, voice_scores, self.fusion,
                     [] if face_scores else ["face: no face in this span"])
            rows.append({"start": round(start, 3), "end": round(end, 3), "label": f.label,
                         "score": round(f.score, 4), "modalities": f.modalities})
        return rows

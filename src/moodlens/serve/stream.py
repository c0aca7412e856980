"""One live browser session: frames and audio chunks in, faces, mood and content out.

Each WebSocket connection gets a ``LiveSession``: its own face tracker and
score smoothing (the video pipeline's ``VideoProcessor``), the latest voice
result, and a ``ContentSelector`` driven by the fused mood. Nothing it receives
is kept beyond the current message: frames and audio live only in memory while
they are classified.
"""

from __future__ import annotations

import time

from ..adapt import ContentSelector, Policy
from ..analyze import largest
from ..errors import NoSpeechError
from ..face.recognizer import FaceRecognizer
from ..fusion import FusionSettings, fuse
from ..video.pipeline import VideoOptions, VideoProcessor
from ..video.sources import Frame
from ..voice.recognizer import VoiceRecognizer

# A browser sends a few frames a second, not 30: BlazeFace detects on every
# frame; a slow detector (Haar) on every second, following faces in between.
STREAM_SLOW_EVERY = 2
VOICE_FRESH_SECONDS = 8.0  # a voice result older than this no longer counts towards the mood


class LiveSession:
    def __init__(self, faces: FaceRecognizer, voices: VoiceRecognizer | None, policy: Policy,
                 fusion: FusionSettings | None = None, clock=time.monotonic):
        self.processor = VideoProcessor(faces, VideoOptions.live(slow_every=STREAM_SLOW_EVERY, detect_width=320))
        self.voices = voices
        self.selector = ContentSelector(policy)
        self.fusion = fusion or FusionSettings()
        self.clock = clock
        self.start = clock()
        self.frames = 0
        self.voice: dict | None = None
        self.voice_time = -1e9

    def now(self) -> float:
        return self.clock() - self.start

    def on_frame(self, image) -> dict:
        """Classify one BGR frame: tracked faces, fused mood and content choice."""
        t = self.now()
        faces = self.processor.step(Frame(self.frames, t, image))
        self.frames += 1
        face = largest(faces)
        mood = self._mood(face.scores if face else None, t)
        return {"type": "frame", "t": round(t, 3), "size": [image.shape[1], image.shape[0]],
                "faces": [{**f.to_dict(), "track": f.track} for f in faces], **mood}

    def on_audio(self, samples, rate: int) -> dict:
        """Classify the speech in one audio chunk; its result counts towards the mood for a while.

        A chunk without speech (silence, music, noise) is the microphone's usual state, not an
        error: the reply has ``voice: null`` and the mood keeps the last speech while it is fresh.
        """
        t = self.now()
        try:
            result = self.voices.predict_speech(samples, sample_rate=rate, name="audio chunk").to_dict()
        except NoSpeechError as exc:
            return {"type": "voice", "t": round(t, 3), "voice": None, "detail": str(exc)}
        result.pop("source", None)
        self.voice, self.voice_time = result, t
        return {"type": "voice", "t": round(t, 3), "voice": result}

    def _mood(self, face_scores: dict | None, t: float) -> dict:
        voice_scores = self.voice["scores"] if self.voice and t - self.voice_time <= VOICE_FRESH_SECONDS else None
        fused = fuse(face_scores, voice_scores, self.fusion)
        choice = self.selector.update(fused.scores if fused.label else None, t)
        return {"mood": fused.to_dict(), "content": choice.to_dict()}

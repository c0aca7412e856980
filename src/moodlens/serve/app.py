"""The web service: `moodlens serve` (FastAPI + uvicorn, the [serve] extra).

Endpoints: ``POST /v1/face``, ``POST /v1/voice``, ``POST /v1/analyze``, the
``/v1/stream`` WebSocket for live frames, ``GET /v1/policy``, ``GET /health``,
OpenAPI at ``/openapi.json`` and ``/docs`` (served from the installed
swagger-ui-bundle, no CDN), and the browser page at ``/``.

Privacy by default: uploads are read into memory (the multipart parser is
told never to spill them to a temporary file), classified and dropped when the
response is sent. Nothing uploaded is written to disk or logged; the access
log is off unless asked for.

Robustness: at most ``workers + queue`` uploads are in the service at once
(503 before reading more), request bodies are capped while they are read
(413), headers or a body that arrive too slowly are cut off (408 / closed),
image headers are checked before decoding (415/413), inference runs on a fixed
pool of worker threads with a bounded queue (503 when full) and a deadline
(504), and a live session that stops sending is closed. Every error is a JSON
``{"detail": "..."}`` that says what was wrong.
"""
# No `from __future__ import annotations` here: FastAPI reads the route
# functions' annotations (UploadFile, ...) as real classes, in this scope.

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MoodlensError, require

STATIC = Path(__file__).with_name("static")
log = logging.getLogger("moodlens.serve")


@dataclass
class ServeSettings:
    face_model: str = "default"
    voice_model: str = "default"
    detector: str = "blazeface"
    policy: str | None = None  # policy file; None = the example shipped with moodlens
    face_weight: float = 1.0
    voice_weight: float = 1.0
    workers: int = 2  # inference threads (one ONNX Runtime thread each)
    queue: int = 16  # requests waiting for a worker beyond which the service answers 503
    timeout: float = 20.0  # seconds from a request's arrival to its inference result (else 504)
    read_timeout: float = 30.0  # seconds to receive a request body (else 408)
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_audio_bytes: int = 16 * 1024 * 1024
    max_audio_seconds: float = 120.0
    max_frame_bytes: int = 2 * 1024 * 1024  # one live frame on the WebSocket
    max_streams: int = 4  # live WebSocket sessions at once
    cors_origins: list[str] = field(default_factory=list)

    @property
    def max_body(self) -> int:
        return self.max_image_bytes + self.max_audio_bytes + 64 * 1024  # both files + multipart overhead


class Workers:
    """A fixed pool of threads, each with its own face and voice recogniser
    (OpenCV's cascade is not shared across threads)."""

    def __init__(self, settings: ServeSettings):
        from ..fusion import FusionSettings

        self.settings = settings
        self.fusion = FusionSettings(settings.face_weight, settings.voice_weight)
        self.pool = concurrent.futures.ThreadPoolExecutor(settings.workers, thread_name_prefix="moodlens")
        self.local = threading.local()
        self.pending = 0
        self.lock = threading.Lock()
        self.analyzer()  # load the models now: a bad model name fails at start, not on the first request

    def analyzer(self):
        """This thread's Analyzer (face + voice recognisers, loaded on first use)."""
        from ..analyze import Analyzer

        a = getattr(self.local, "analyzer", None)
        if a is None:
            s = self.settings
            a = self.local.analyzer = Analyzer(s.face_model, s.voice_model, s.detector, 1, self.fusion)
            a.faces, a.voices  # noqa: B018 - load both now
        return a

    async def run(self, fn):
        """Run ``fn(analyzer)`` on a worker; 504 past the deadline. The queue is
        bounded before this, by ``BodyLimit`` admitting at most workers + queue
        requests, so ``pending`` is only counted here (for /health)."""
        from fastapi import HTTPException

        with self.lock:
            self.pending += 1
        try:
            future = self.pool.submit(lambda: fn(self.analyzer()))
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self.settings.timeout)
            except asyncio.TimeoutError:
                future.cancel()
                raise HTTPException(504, f"inference took longer than {self.settings.timeout:.0f} s") from None
        finally:
            with self.lock:
                self.pending -= 1


def create_app(settings: ServeSettings | None = None):
    """The FastAPI application (models loaded, policy validated)."""
    fastapi = require("fastapi", "serve")
    from fastapi import File, HTTPException, Request, UploadFile, WebSocket, WebSocketDisconnect
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.formparsers import MultiPartParser

    from .. import __version__
    from ..adapt import load_policy
    from . import schemas
    from .limits import BodyLimit, same_origin
    from .uploads import IMAGE_TYPES, UploadError, check_audio, check_image, is_wav

    s = settings or ServeSettings()
    # Uploads stay in memory: the parser spools parts over 1 MiB to a temporary
    # file by default, which would put users' pictures on disk.
    MultiPartParser.spool_max_size = max(MultiPartParser.spool_max_size, s.max_body)
    policy = load_policy(s.policy)
    workers = Workers(s)
    streams = {"open": 0}

    app = fastapi.FastAPI(
        title="moodlens", version=__version__, docs_url=None, redoc_url=None,
        description="Emotion recognition from faces and voices, on this machine. Uploads are classified in "
                    "memory and dropped after the response: nothing is stored or logged.")
    if s.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"])
    app.add_middleware(BodyLimit, limit=s.max_body, timeout=s.read_timeout, max_bodies=s.workers + s.queue)

    @app.exception_handler(UploadError)
    async def upload_error(request, exc: UploadError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(MoodlensError)
    async def input_error(request, exc: MoodlensError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError):
        # FastAPI's default is a list of objects; the API promises (and documents) {"detail": "..."}.
        parts = [f"{'.'.join(map(str, e.get('loc', ())[1:])) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    errors = {400: {"model": schemas.Problem, "description": "empty upload or malformed multipart body"},
              408: {"model": schemas.Problem, "description": "request body arrived too slowly"},
              413: {"model": schemas.Problem, "description": "upload too large"},
              415: {"model": schemas.Problem, "description": "not an accepted format"},
              422: {"model": schemas.Problem, "description": "unreadable content or missing field"},
              503: {"model": schemas.Problem, "description": "server busy"},
              504: {"model": schemas.Problem, "description": "inference timed out"}}

    async def read(upload: UploadFile) -> bytes:
        data = await upload.read()
        await upload.close()
        return data

    @app.get("/health", response_model=schemas.Health, tags=["service"])
    async def health():
        a = workers.analyzer()
        return {"status": "ok", "version": __version__,
                "models": {"face": a.faces.model.path.name, "voice": a.voices.model.path.name},
                "policy": policy.name, "streams": streams["open"], "pending": workers.pending}

    @app.post("/v1/face", response_model=schemas.FaceResponse, responses=errors, tags=["predict"])
    async def face(image: UploadFile = File(..., description=f"a photo ({IMAGE_TYPES})")):
        """Every face in the photo with its emotion."""
        data = await read(image)

        def work(a):
            picture = check_image(data, s.max_image_bytes, s.max_image_pixels)
            return {"width": picture.shape[1], "height": picture.shape[0],
                    "faces": [{k: v for k, v in f.to_dict().items() if k != "source"}
                              for f in a.faces.predict_array(picture, "image upload")]}

        return await workers.run(work)

    @app.post("/v1/voice", response_model=schemas.VoiceResponse, responses=errors, tags=["predict"])
    async def voice(audio: UploadFile = File(..., description="speech: WAV, FLAC, OGG or MP3")):
        """The emotion of the speech; a long recording also gets a timeline of segments."""
        data = await read(audio)

        def work(a):
            samples, rate = check_audio(data, s.max_audio_bytes, s.max_audio_seconds)
            r = a.voices.predict(samples, sample_rate=rate, name="audio upload").to_dict()
            r.pop("source")
            return r

        return await workers.run(work)

    @app.post("/v1/analyze", response_model=schemas.AnalyzeResponse, responses=errors, tags=["predict"])
    async def analyze(image: UploadFile | None = File(None, description="a photo of the speaker"),
                      audio: UploadFile | None = File(None, description="a clip of their speech")):
        """Face and voice fused into one mood. Either part may be left out or fail: the other is then used
        alone and ``fused.notes`` says so."""
        if image is None and audio is None:
            raise HTTPException(422, "send an image, an audio clip, or both (multipart fields 'image', 'audio')")
        image_data = await read(image) if image is not None else None
        audio_data = await read(audio) if audio is not None else None

        def work(a):
            picture = samples = None
            rate, failed, statuses = None, {}, []
            if image_data is not None:
                try:
                    picture = check_image(image_data, s.max_image_bytes, s.max_image_pixels)
                except MoodlensError as exc:
                    failed["face"] = str(exc)
                    statuses.append(getattr(exc, "status", 422))
            if audio_data is not None:
                try:
                    samples, rate = check_audio(audio_data, s.max_audio_bytes, s.max_audio_seconds)
                except MoodlensError as exc:
                    failed["voice"] = str(exc)
                    statuses.append(getattr(exc, "status", 422))
            if picture is None and samples is None:  # nothing usable: the request as a whole fails
                raise UploadError("; ".join(failed.values()), max(statuses))
            out = a.analyze(image=picture, audio=samples, sample_rate=rate, failed=failed,
                            names={"image": "image upload", "audio": "audio upload"}).to_dict()
            sent = {part for part, d in (("face", image_data), ("voice", audio_data)) if d is not None}
            if sent <= set(out["errors"]):  # every part sent failed (e.g. silent audio alone): nothing to fuse
                raise UploadError("; ".join(out["errors"][part] for part in sorted(sent)), 422)
            for part in ("face", "voice"):
                if out[part]:
                    out[part].pop("source", None)
            out.pop("source")
            out.pop("timeline")
            return out

        return await workers.run(work)

    @app.get("/v1/policy", tags=["service"])
    async def get_policy():
        """The content policy the live stream applies (items, rules, dwell, hysteresis)."""
        return policy.to_dict()

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket):
        """Live: send binary messages, each a JPEG/PNG/WebP frame or a WAV audio chunk (told apart by
        content); every message gets one JSON reply (type frame, voice or error)."""
        from .stream import LiveSession

        origin = ws.headers.get("origin")
        if origin and not same_origin(origin, ws.headers.get("host", "")) and origin not in s.cors_origins:
            # Another site's page in the user's browser must not drive this service (WebSocket hijacking).
            await ws.close(1008, f"origin {origin} is not allowed (see --cors-origin)")
            return
        await ws.accept()
        if streams["open"] >= s.max_streams:
            await ws.close(1013, f"server busy: {s.max_streams} live sessions already open")
            return
        streams["open"] += 1
        try:
            base = workers.analyzer()
            faces = base.faces.fork()
            session = LiveSession(faces, base.voices, policy, workers.fusion)
            await ws.send_json({"type": "ready", "labels": list(faces.labels), "policy": policy.to_dict(),
                                "max_frame_bytes": s.max_frame_bytes})
            while True:
                try:
                    message = await asyncio.wait_for(ws.receive(), s.read_timeout)
                except asyncio.TimeoutError:  # a silent client must not keep one of the max_streams places
                    await ws.close(1000, f"no message for {s.read_timeout:.0f} s")
                    break
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    await ws.send_json({"type": "error", "detail": "send frames and audio as binary messages"})
                    continue
                try:
                    if is_wav(data):
                        samples, rate = check_audio(data, s.max_audio_bytes, 30.0, "audio chunk")
                        reply = await asyncio.wait_for(asyncio.to_thread(session.on_audio, samples, rate), s.timeout)
                    else:
                        picture = check_image(data, s.max_frame_bytes, 4096 * 4096, "frame")
                        reply = await asyncio.wait_for(asyncio.to_thread(session.on_frame, picture), s.timeout)
                except MoodlensError as exc:
                    reply = {"type": "error", "detail": str(exc)}
                except asyncio.TimeoutError:
                    reply = {"type": "error", "detail": f"took longer than {s.timeout:.0f} s"}
                except Exception as exc:  # a bug of ours: say so, keep the session, log no content
                    log.exception("live stream: unexpected error on a %d-byte message", len(data))
                    reply = {"type": "error", "detail": f"internal error ({type(exc).__name__}); message skipped"}
                await ws.send_json(reply)
        except WebSocketDisconnect:
            pass
        finally:
            streams["open"] -= 1

    api_methods = {"/v1/face": "POST", "/v1/voice": "POST", "/v1/analyze": "POST", "/v1/policy": "GET"}

    @app.api_route("/v1/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                   include_in_schema=False)
    async def not_here(request: Request):
        """Wrong method or unknown path under /v1 (else the page mounted at / answers 404 or 405 for it)."""
        allowed = api_methods.get(request.url.path)
        if allowed:
            raise HTTPException(405, "Method Not Allowed", headers={"Allow": allowed})
        raise HTTPException(404, "Not Found")

    swagger = require("swagger_ui_bundle", "serve").swagger_ui_path
    app.mount("/docs-assets", StaticFiles(directory=str(swagger)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="moodlens API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="")

    app.mount("/", StaticFiles(directory=str(STATIC), html=True), name="page")
    app.state.settings, app.state.policy, app.state.workers = s, policy, workers
    return app

"""`moodlens serve`: the web service and browser page ([serve] extra)."""

from __future__ import annotations

import sys
from pathlib import Path

from .face import DETECTORS

EXIT_OK = 0


def add_serve(sub) -> None:
    p = sub.add_parser("serve", help="web service and live browser page ([serve] extra)",
                       description="Serve the HTTP API (/v1/face, /v1/voice, /v1/analyze, /v1/stream, /health, "
                                   "/docs) and the live page at /. Binds to 127.0.0.1 unless --host says otherwise. "
                                   "Uploads are classified in memory and dropped: nothing is stored or logged.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument("--policy", type=Path, help="content policy for the live page (default: the shipped example)")
    p.add_argument("--face-model", default="default", help="face model name or .onnx path")
    p.add_argument("--voice-model", default="default", help="voice model name or .onnx path")
    p.add_argument("--detector", default="blazeface", help=DETECTORS)
    p.add_argument("--face-weight", type=float, default=1.0, help="fusion weight of the face (default: %(default)s)")
    p.add_argument("--voice-weight", type=float, default=1.0, help="fusion weight of the voice (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="inference threads (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per request before 504 (default: %(default)s)")
    p.add_argument("--max-image-mb", type=float, default=8.0, help="largest image upload (default: %(default)s)")
    p.add_argument("--max-audio-mb", type=float, default=16.0, help="largest audio upload (default: %(default)s)")
    p.add_argument("--max-streams", type=int, default=4, help="live sessions at once (default: %(default)s)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                   help="allow browser pages from this origin to call the API (repeatable; default: none)")
    p.add_argument("--access-log", action="store_true",
                   help="log each request's method, path, status and client address (off by default)")
    p.set_defaults(run=run_serve)


def run_serve(args) -> int:
    from .errors import InputError, require

    uvicorn = require("uvicorn", "serve")
    from .serve import ServeSettings, create_app
    from .serve.limits import header_deadline_protocol

    if args.workers < 1 or args.max_streams < 1 or args.timeout <= 0:
        raise InputError("--workers and --max-streams must be >= 1 and --timeout > 0")
    mb = 1024 * 1024
    settings = ServeSettings(face_model=args.face_model, voice_model=args.voice_model, detector=args.detector,
                             policy=str(args.policy) if args.policy else None, face_weight=args.face_weight,
                             voice_weight=args.voice_weight, workers=args.workers, timeout=args.timeout,
                             max_image_bytes=int(args.max_image_mb * mb), max_audio_bytes=int(args.max_audio_mb * mb),
                             max_streams=args.max_streams, cors_origins=args.cors_origin)
    try:
        app = create_app(settings)
    except ValueError as exc:  # weights out of range
        raise InputError(str(exc)) from exc
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: other machines can reach this service. It has no "
              "authentication; put it behind one if the network is not yours.", file=sys.stderr)
    print(f"moodlens: open http://{'localhost' if args.host in ('127.0.0.1', '::1') else args.host}:{args.port}/ "
          f"(API docs at /docs); Ctrl+C stops", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="warning",
                timeout_keep_alive=5, ws_max_size=settings.max_frame_bytes + 1024 * 1024,
                http=header_deadline_protocol(settings.read_timeout))
    return EXIT_OK

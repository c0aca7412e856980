"""Throughput, latency and memory of `moodlens serve` under a bounded load, on loopback.

    python benchmarks/serve_load.py                  # about 2.5 min: 1, 4, 16 clients x 4 endpoints, 10 s each
    python benchmarks/serve_load.py --quick          # about 30 s smoke: 2 s each, 30 stream frames
    python benchmarks/serve_load.py --levels 32,64 --endpoints face --seconds 5 --json load.json

Starts its own server (`python -m moodlens serve` on a free 127.0.0.1 port,
default settings unless --workers is given) and stops it at the end.

For each endpoint (/health; /v1/face with two_people.jpg; /v1/voice with a
RAVDESS FLAC clip; /v1/analyze with both) and each number of concurrent
clients (threads, one keep-alive httpx connection each, every client sends its
next request as soon as the last one is answered) for a fixed time: requests
per second, p50 and p99 latency of the answered (200) requests, 503s (the
bounded queue refusing work under overload: by design; the client then waits
as Retry-After says) and other errors by status or exception. The server's
resident memory (VmRSS of its process) is read before any request, after a
warm-up, after each load step and at the end, with its peak (VmHWM), to show
whether memory grows.

Then rounds of concurrent /v1/analyze requests whose image and audio are
just under their size limits (the photo and clip padded with zeros, 24 MiB a
request): the memory a near-cap body costs the server while it is read,
parsed and checked (at most workers + queue uploads are admitted at once;
more get 503 before their bodies are read).

Then the live stream: one WebSocket client sends the first frames of the
shared face video (resized to 640x360, JPEG) one at a time and waits for each
reply: frames per second and p50/p99 round trip.

The clients run on the same machine as the server and share its cores, so the
figures are a lower bound of what the server does alone. Exits 1 if any
request failed other than with a 503, or the server logged a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import httpx  # noqa: E402
from common import table  # noqa: E402
from serve_common import PHOTO, SPEECH, VIDEO, Server, ensure_inputs, percentile, report_tracebacks  # noqa: E402


def requests_by_endpoint() -> dict:
    """Endpoint name -> function(client) sending one request."""
    photo, speech = PHOTO.read_bytes(), SPEECH.read_bytes()
    image = ("image", (PHOTO.name, photo, "image/jpeg"))
    audio = ("audio", (SPEECH.name, speech, "audio/flac"))
    return {
        "health": lambda c: c.get("/health"),
        "face": lambda c: c.post("/v1/face", files=[image]),
        "voice": lambda c: c.post("/v1/voice", files=[audio]),
        "analyze": lambda c: c.post("/v1/analyze", files=[image, audio]),
    }


def run_load(url: str, send, clients: int, seconds: float = 0.0, each: int = 0) -> dict:
    """``clients`` threads sending back to back for ``seconds`` (answers still
    in flight at the end are waited for and counted), or ``each`` requests apiece."""
    per_client: list[list[tuple[float, int | str]]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(out: list) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            while len(out) < each if each else time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    response = send(c)
                    outcome: int | str = response.status_code
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                out.append((time.perf_counter() - t0, outcome))
                if outcome == 503:  # busy: wait as the server asks, as a well-behaved client does
                    pause = float(response.headers.get("retry-after", 1))
                    time.sleep(min(pause, max(0.0, deadline - time.perf_counter())))

    threads = [threading.Thread(target=client, args=(out,)) for out in per_client]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    results = [r for out in per_client for r in out]
    ok = [lat for lat, outcome in results if outcome == 200]
    outcomes = Counter(outcome for _, outcome in results)
    return {"requests": len(results), "seconds": round(elapsed, 2), "ok": len(ok),
            "req_per_s": round(len(ok) / elapsed, 2),
            "p50_ms": round(1000 * percentile(ok, 50), 1), "p99_ms": round(1000 * percentile(ok, 99), 1),
            "busy_503": outcomes.pop(503, 0), "errors": {str(k): v for k, v in outcomes.items() if k != 200}}


def warm_up(url: str, sends: dict, workers: int) -> None:
    """Enough concurrent requests per endpoint that every worker thread has loaded its models."""
    for send in sends.values():
        run_load(url, send, 2 * workers, each=2)


def run_big_uploads(srv: Server, clients: int, rounds: int) -> list[dict]:
    """Rounds of ``clients`` concurrent /v1/analyze requests whose image and audio are each just under
    their size limits (the real photo and clip, padded with zeros): what a body near the cap costs."""
    from moodlens.serve.app import ServeSettings

    limits, room = ServeSettings(), 4096
    photo, speech = PHOTO.read_bytes(), SPEECH.read_bytes()
    image = photo + bytes(limits.max_image_bytes - room - len(photo))
    audio = speech + bytes(limits.max_audio_bytes - room - len(speech))
    files = [("image", (PHOTO.name, image, "image/jpeg")), ("audio", (SPEECH.name, audio, "audio/flac"))]
    rows = []
    for k in range(rounds):
        r = run_load(srv.url, lambda c: c.post("/v1/analyze", files=files), clients, each=1)
        rows.append({"round": k + 1, "clients": clients, "body_mib": round((len(image) + len(audio)) / 2 ** 20, 1),
                     "ok": r["ok"], "busy_503": r["busy_503"], "errors": r["errors"], "seconds": r["seconds"],
                     "rss_mib": round(srv.memory_mib(), 1), "peak_mib": round(srv.memory_mib("VmHWM"), 1)})
    return rows


def video_frames(count: int) -> list[bytes]:
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        small = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
        frames.append(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    cap.release()
    if not frames:
        raise SystemExit(f"{VIDEO}: no frames read")
    return frames


def run_stream(ws_url: str, frames: list[bytes]) -> dict:
    from websockets.sync.client import connect

    times, kinds, with_face = [], Counter(), 0
    with connect(ws_url + "/v1/stream", max_size=None) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready["type"] == "ready", ready
        start = time.perf_counter()
        for jpeg in frames:
            t0 = time.perf_counter()
            ws.send(jpeg)
            reply = json.loads(ws.recv(timeout=60))
            times.append(time.perf_counter() - t0)
            kinds[reply["type"]] += 1
            with_face += bool(reply.get("faces"))
        elapsed = time.perf_counter() - start
    return {"frames": len(frames), "frames_per_s": round(len(frames) / elapsed, 2),
            "p50_ms": round(1000 * percentile(times, 50), 1), "p99_ms": round(1000 * percentile(times, 99), 1),
            "frames_with_face": with_face, "replies": dict(kinds)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="about 30 s: 2 s per step, 30 stream frames")
    ap.add_argument("--levels", default="1,4,16", help="concurrent clients, comma-separated (default: %(default)s)")
    ap.add_argument("--endpoints", default="health,face,voice,analyze",
                    help="which of health, face, voice, analyze (default: %(default)s)")
    ap.add_argument("--seconds", type=float, help="seconds per endpoint and level (default: 10, --quick 2)")
    ap.add_argument("--frames", type=int, help="live-stream frames (default: 100, --quick 30; 0 = skip)")
    ap.add_argument("--big-clients", type=int,
                    help="concurrent near-cap (24 MiB) uploads per round (default: 16, --quick 4; 0 = skip)")
    ap.add_argument("--big-rounds", type=int, help="rounds of near-cap uploads (default: 3, --quick 1)")
    ap.add_argument("--workers", type=int, default=2, help="server inference threads (default: %(default)s)")
    ap.add_argument("--json", type=Path, metavar="OUT", help="also write the figures to this JSON file")
    args = ap.parse_args()
    seconds = args.seconds if args.seconds is not None else (2.0 if args.quick else 10.0)
    n_frames = args.frames if args.frames is not None else (30 if args.quick else 100)
    big_clients = args.big_clients if args.big_clients is not None else (4 if args.quick else 16)
    big_rounds = args.big_rounds if args.big_rounds is not None else (1 if args.quick else 3)
    levels = [int(x) for x in args.levels.split(",")]
    ensure_inputs()
    all_sends = requests_by_endpoint()
    unknown = set(args.endpoints.split(",")) - set(all_sends)
    if unknown:
        raise SystemExit(f"unknown endpoint(s) {sorted(unknown)}: choose from {sorted(all_sends)}")
    sends = {name: all_sends[name] for name in args.endpoints.split(",")}
    frames = video_frames(n_frames) if n_frames else []

    rows, memory = [], {}
    with Server(["--workers", str(args.workers)]) as srv:
        print(f"moodlens serve on {srv.url}, --workers {args.workers}; client and server share "
              f"{os.cpu_count()} CPU cores; {seconds:g} s per step\n", flush=True)
        memory["before requests"] = srv.memory_mib()
        warm_up(srv.url, sends, args.workers)
        memory["after warm-up"] = srv.memory_mib()
        for name, send in sends.items():
            for clients in levels:
                r = run_load(srv.url, send, clients, seconds)
                r.update(endpoint=name, clients=clients, rss_mib=round(srv.memory_mib(), 1))
                rows.append(r)
                print(f"  {name} x {clients}: {r['req_per_s']} req/s", file=sys.stderr, flush=True)
        memory["after HTTP load"] = srv.memory_mib()
        big = run_big_uploads(srv, big_clients, big_rounds) if big_clients else []
        if big:
            memory["after near-cap uploads"] = srv.memory_mib()
        stream = run_stream(srv.ws_url, frames) if frames else None
        memory["end"] = srv.memory_mib()
        memory["peak (VmHWM)"] = srv.memory_mib("VmHWM")
        health = httpx.get(srv.url + "/health", timeout=10).json()
        tracebacks = report_tracebacks(srv)

    print("## HTTP load (req/s and latency of the 200 answers; 503 = queue full, by design)\n")
    print(table([{**r, "errors": " ".join(f"{k}x{v}" for k, v in r["errors"].items()) or "-"} for r in rows],
                ["endpoint", "clients", "requests", "seconds", "req_per_s", "p50_ms", "p99_ms", "busy_503",
                 "errors", "rss_mib"]))
    print("\n## Server memory (MiB)\n")
    print(table([{"when": k, "MiB": f"{v:.1f}"} for k, v in memory.items()]))
    if big:
        print(f"\n## Near-cap uploads: {big_clients} concurrent /v1/analyze of {big[0]['body_mib']} MiB each, "
              f"{len(big)} rounds\n")
        print(table([{**r, "errors": " ".join(f"{k}x{v}" for k, v in r["errors"].items()) or "-"} for r in big]))
    if stream:
        print(f"\n## Live stream: {stream['frames']} JPEG frames 640x360, one at a time\n")
        print(table([{**stream, "replies": " ".join(f"{k}x{v}" for k, v in stream["replies"].items())}]))
    print(f"\nafter the run /health says pending={health['pending']} streams={health['streams']}; "
          f"server tracebacks: {tracebacks}")
    if args.json:
        args.json.write_text(json.dumps({"seconds_per_step": seconds, "workers": args.workers, "load": rows,
                                         "memory_mib": memory, "near_cap_uploads": big, "stream": stream, "tracebacks": tracebacks},
                                        indent=2))
    errors = sum(sum(r["errors"].values()) for r in rows + big)
    return 1 if errors or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())

"""The web service through FastAPI's TestClient with the bundled models: the
HTTP endpoints, bad uploads (always a 4xx with a JSON detail, never a 5xx),
the pages, privacy (uploads never touch the disk) and the live WebSocket."""

from __future__ import annotations

import io
import re
import struct
import tempfile
import zlib
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from moodlens.serve import ServeSettings, create_app  # noqa: E402

from conftest import ANGRY_CLIP, FACE_VIDEO, MEDIA, need  # noqa: E402

# The example policy with no dwell time, so the live content switches without waiting.
POLICY = """\
version: 1
name: api test
dwell_seconds: 0
hysteresis: 0.1
smoothing: 0.5
default: waiting
items:
  waiting: {title: Waiting for a mood}
  smile-ad: {kind: ad, title: Smile offer}
  comfort: {title: Comfort playlist}
rules:
  - {when: happy, min_score: 0.5, show: smile-ad}
  - {when: [sad, fear], min_score: 0.45, show: comfort}
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> ServeSettings:
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(POLICY)
    return ServeSettings(policy=str(policy), max_streams=1)


@pytest.fixture(scope="module")
def client(settings):
    # server exceptions become 500 responses, as a real client would see them
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def photo() -> bytes:
    return need(MEDIA / "two_people.jpg").read_bytes()


@pytest.fixture(scope="module")
def clip() -> bytes:
    return need(ANGRY_CLIP).read_bytes()


@pytest.fixture(scope="module")
def wav_clip() -> bytes:
    """The angry RAVDESS clip as WAV bytes."""
    import soundfile as sf

    samples, rate = sf.read(str(need(ANGRY_CLIP)), dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header declares a huge grayscale picture."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4, 9)  # a few rows; the decoder would allocate all of them
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def post_face(client, data: bytes, name: str = "photo.jpg"):
    return client.post("/v1/face", files={"image": (name, data, "image/jpeg")})


def assert_problem(response, status: int, *phrases: str):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    for phrase in phrases:
        assert phrase in detail


# --- service ----------------------------------------------------------------------

def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["models"] == {"face": "face_resnet.onnx", "voice": "voice_ensemble.onnx"}
    assert body["policy"] == "api test"
    assert body["streams"] == 0


def test_policy_endpoint_returns_the_policy(client):
    body = client.get("/v1/policy").json()
    assert body["default"] == "waiting"
    assert body["dwell_seconds"] == 0
    assert body["rules"][0] == {"when": ["happy"], "min_score": 0.5, "show": "smile-ad"}
    assert set(body["items"]) == {"waiting", "smile-ad", "comfort"}


def test_openapi_lists_the_endpoints(client):
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    assert {"/health", "/v1/face", "/v1/voice", "/v1/analyze", "/v1/policy"} <= set(paths)
    for path in ("/v1/face", "/v1/voice", "/v1/analyze"):
        assert "post" in paths[path]
        assert {"413", "415", "422"} <= set(paths[path]["post"]["responses"])


def attribute(tag: str, name: str) -> str | None:
    found = re.search(rf"""\b{name}\s*=\s*["']([^"']*)["']""", tag, flags=re.I)
    return found.group(1) if found else None


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_pages_are_html_with_no_external_scripts(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    tags = re.findall(r"<(?:script|link)\b[^>]*>", r.text, flags=re.I)
    urls = [u for t in tags for u in (attribute(t, "src"), attribute(t, "href")) if u]
    assert any(t.lower().startswith("<script") for t in tags), "the page runs scripts"
    for url in urls:
        assert not re.match(r"(https?:)?//", url.strip(), flags=re.I), f"external URL {url}"
        if url.startswith("data:"):
            continue
        local = client.get(urljoin(path, url))  # every script and stylesheet is served by the service itself
        assert local.status_code == 200, url
        if url.endswith(".js"):
            assert not re.search(r"""(?:import|from)\s*\(?\s*["'](?:https?:)?//""", local.text), url


# --- predictions ------------------------------------------------------------------

def test_face_finds_both_faces_inside_the_image(client, photo):
    r = post_face(client, photo)
    assert r.status_code == 200
    body = r.json()
    h, w = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR).shape[:2]
    assert (body["width"], body["height"]) == (w, h)
    assert len(body["faces"]) == 2
    for face in body["faces"]:
        x, y, fw, fh = face["box"]
        assert 0 <= x and 0 <= y and fw > 0 and fh > 0 and x + fw <= w and y + fh <= h
        assert face["label"] == max(face["scores"], key=face["scores"].get)
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)
        assert "source" not in face


def test_the_file_name_and_type_do_not_matter(client, photo):
    a = post_face(client, photo, "whatever.bin").json()
    b = client.post("/v1/face", files={"image": ("x.png", photo, "application/octet-stream")}).json()
    assert a == b == post_face(client, photo).json()


def test_voice_on_a_ravdess_clip(client, clip):
    r = client.post("/v1/voice", files={"audio": ("clip.flac", clip, "audio/flac")})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["label"] == "angry"
    assert "calm" in body["scores"]
    assert body["duration"] == pytest.approx(3.9, abs=0.1)
    assert body["segments"] == [] and "source" not in body


def test_analyze_with_both(client, photo, clip):
    r = client.post("/v1/analyze", files={"image": ("p.jpg", photo), "audio": ("c.flac", clip)})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["errors"] == {}
    assert body["fused"]["modalities"] == ["face", "voice"]
    assert body["face"]["faces"] == 2 and body["voice"]["label"] == "angry"
    assert "source" not in body and "source" not in body["face"] and "source" not in body["voice"]


@pytest.mark.parametrize("part", ["image", "audio"])
def test_analyze_with_one_part(client, photo, clip, part):
    files = {"image": ("p.jpg", photo)} if part == "image" else {"audio": ("c.flac", clip)}
    body = client.post("/v1/analyze", files=files).json()
    used, other = ("face", "voice") if part == "image" else ("voice", "face")
    assert body["fused"]["modalities"] == [used]
    assert body[other] is None and body["errors"] == {}
    assert body["fused"]["notes"] == [f"{other} not used: {used} alone"]


def test_analyze_with_a_broken_image_uses_the_voice_and_says_why(client, clip):
    r = client.post("/v1/analyze", files={"image": ("p.jpg", b"just some text"), "audio": ("c.flac", clip)})
    assert r.status_code == 200
    body = r.json()
    assert body["fused"]["modalities"] == ["voice"] and body["fused"]["label"] == "angry"
    assert "not a JPEG, PNG, WebP or BMP image" in body["errors"]["face"]
    assert body["fused"]["notes"] == [f"face failed ({body['errors']['face']})"]


def test_analyze_with_a_broken_audio_uses_the_face_and_says_why(client, photo):
    r = client.post("/v1/analyze", files={"image": ("p.jpg", photo), "audio": ("c.wav", b"RIFF....WAVEjunk")})
    assert r.status_code == 200
    body = r.json()
    assert body["fused"]["modalities"] == ["face"]
    assert body["errors"]["voice"].startswith("audio upload:")
    assert body["fused"]["notes"][0].startswith("voice failed (audio upload:")


def test_analyze_with_nothing(client):
    assert_problem(client.post("/v1/analyze"), 422, "send an image, an audio clip, or both")


def test_analyze_with_every_part_broken_answers_with_the_worst_status(client):
    r = client.post("/v1/analyze", files={"image": ("p.jpg", b"text"), "audio": ("c.wav", b"")})
    assert_problem(r, 415, "not a JPEG", "audio upload: empty")


# --- bad uploads: a 4xx with a clear detail, never a 5xx --------------------------

def test_truncated_jpeg(client, photo):
    for cut in (3000, len(photo) // 2):
        assert_problem(post_face(client, photo[:cut]), 422, "not a readable image")


def test_a_jpeg_cut_inside_its_header(client, photo):
    assert_problem(post_face(client, photo[:40]), 422, "JPEG header is truncated")


def test_text_named_jpg_is_unsupported(client):
    assert_problem(post_face(client, b"hello, I am a text file\n" * 10), 415, "not a JPEG, PNG, WebP or BMP image")


def test_decompression_bomb_is_refused_before_decoding(client):
    bomb = png_bomb()
    assert len(bomb) < 2000
    assert_problem(post_face(client, bomb, "bomb.png"), 413, "30000x30000 pixels, over the limit")


def test_png_declaring_an_empty_picture(client):
    assert_problem(post_face(client, png_bomb(0, 10), "empty.png"), 422, "empty picture (0x10)")


def test_oversize_body(client, settings):
    r = post_face(client, b"\xff\xd8" + b"\0" * settings.max_body)
    assert_problem(r, 413, f"over the limit of {settings.max_body} bytes")


def test_image_over_its_own_limit(client, settings):
    r = post_face(client, b"\xff\xd8" + b"\0" * settings.max_image_bytes)
    assert_problem(r, 413, f"over the limit of {settings.max_image_bytes}")


@pytest.mark.parametrize("path, field", [("/v1/face", "image"), ("/v1/voice", "audio")])
def test_empty_file(client, path, field):
    assert_problem(client.post(path, files={field: ("empty", b"")}), 400, "empty (0 bytes)")


def test_missing_field_is_a_422_with_a_detail(client):
    # one string, as the OpenAPI document promises, not FastAPI's default list of objects
    assert_problem(client.post("/v1/face", files={"photo": ("p.jpg", b"x")}), 422, "image: Field required")


def test_wrong_method_and_unknown_path_under_v1(client):
    r = client.get("/v1/face")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert client.post("/v1/nothing").status_code == 404


def zero_wav(samples: int, rate: int) -> bytes:
    """Silent 16-bit WAV bytes."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(samples, np.int16), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_audio_at_an_absurd_sample_rate(client):
    assert_problem(client.post("/v1/voice", files={"audio": ("odd.wav", zero_wav(20, 1))}), 422,  # 20 s at 1 Hz
                   "sample rate 1 Hz")


def test_analyze_with_only_unusable_audio_is_a_422(client):
    assert_problem(client.post("/v1/analyze", files={"audio": ("quiet.wav", zero_wav(16000 * 3, 16000))}), 422,
                   "audio upload: silent")


def test_wav_with_a_bad_header(client, wav_clip):
    zero_channels = wav_clip[:22] + struct.pack("<H", 0) + wav_clip[24:]
    assert_problem(client.post("/v1/voice", files={"audio": ("c.wav", zero_channels)}), 422,
                   "audio upload: damaged WAV file")
    no_data = wav_clip[:36] + b"junk" + wav_clip[40:]
    assert_problem(client.post("/v1/voice", files={"audio": ("c.wav", no_data)}), 422, "audio upload:")


def test_text_as_audio(client):
    assert_problem(client.post("/v1/voice", files={"audio": ("c.mp3", b"not audio at all " * 20)}), 422,
                   "not a readable audio file")


def test_audio_too_long(client):
    assert_problem(client.post("/v1/voice", files={"audio": ("long.wav", zero_wav(8000 * 130, 8000))}), 413,
                   "130 s long, over the limit of 120 s")


# --- privacy: uploads stay in memory ------------------------------------------------

def test_no_upload_is_written_to_disk(client, settings, monkeypatch, tmp_path):
    from starlette.formparsers import MultiPartParser

    assert MultiPartParser.spool_max_size >= settings.max_body

    # a 3 MB picture (random pixels do not compress), well over starlette's 1 MiB default spool
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    big = cv2.imencode(".png", noise)[1].tobytes()
    assert len(big) > 3_000_000

    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))  # anything temporary would land here
    opened = []
    real = tempfile.TemporaryFile

    def recording(*args, **kwargs):
        opened.append(args or kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", recording)

    r = post_face(client, big, "noise.png")
    assert r.status_code == 200 and r.json()["width"] == 1000
    assert opened == []
    assert list(spool.iterdir()) == []

    # the check can fail: with starlette's default spool size the same upload does go to a temporary file
    monkeypatch.setattr(MultiPartParser, "spool_max_size", 1024 * 1024)
    assert post_face(client, big, "noise.png").status_code == 200
    assert opened, "the probe did not see the rollover to disk"


# --- the live WebSocket -----------------------------------------------------------

@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    """JPEG frames (640x360) of the shared face video, 0.16 s apart."""
    cap = cv2.VideoCapture(str(need(FACE_VIDEO)))
    out = []
    for i in range(48):
        ok, image = cap.read()
        assert ok
        if i % 4 == 0:
            out.append(cv2.imencode(".jpg", cv2.resize(image, (640, 360)))[1].tobytes())
    cap.release()
    return out


def test_stream_tracks_the_face_and_switches_the_content(client, frames):
    with client.websocket_connect("/v1/stream") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready"
        assert ready["policy"]["default"] == "waiting"
        assert "happy" in ready["labels"]
        replies = []
        for frame in frames:
            ws.send_bytes(frame)
            replies.append(ws.receive_json())
    assert all(r["type"] == "frame" and r["size"] == [640, 360] for r in replies)
    with_face = [r for r in replies if r["faces"]]
    assert len(with_face) >= len(frames) - 3  # found within the first few frames, then followed
    assert len({f["track"] for r in with_face for f in r["faces"]}) == 1  # one person, one track id
    last = replies[-1]
    assert last["faces"][0]["label"] == "happy"
    assert last["mood"]["label"] == "happy" and last["mood"]["modalities"] == ["face"]

    items = [r["content"]["item_id"] for r in replies]
    assert items[0] == "waiting"
    assert items[-1] == "smile-ad"
    switch = items.index("smile-ad")
    assert replies[switch]["content"]["changed"] and replies[switch]["content"]["mood"] == "happy"
    assert items[switch:] == ["smile-ad"] * (len(items) - switch)  # and it stays
    assert sum(r["content"]["changed"] for r in replies[1:]) == 1


def test_stream_answers_bad_messages_with_errors_and_stays_open(client, frames, settings):
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_text("hello")
        assert ws.receive_json() == {"type": "error", "detail": "send frames and audio as binary messages"}
        for garbage, phrase in [(b"\x00\x01garbage", "frame: not a JPEG, PNG, WebP or BMP image"),
                                (b"RIFF\x10\x00\x00\x00WAVEnonsense", "audio chunk:"),
                                (png_bomb(), "over the limit"),
                                (b"\xff\xd8" + b"\0" * settings.max_frame_bytes, "over the limit"),
                                (frames[0][:2000], "not a readable image")]:
            ws.send_bytes(garbage)
            reply = ws.receive_json()
            assert reply["type"] == "error" and phrase in reply["detail"], reply
        ws.send_bytes(frames[0])  # still open and working
        assert ws.receive_json()["type"] == "frame"


def test_stream_voice_chunk_counts_towards_the_mood(client, frames, wav_clip):
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(wav_clip)
        reply = ws.receive_json()
        assert reply["type"] == "voice"
        assert reply["voice"]["label"] == "angry" and "source" not in reply["voice"]
        for frame in frames[:4]:
            ws.send_bytes(frame)
            last = ws.receive_json()
        assert last["faces"]
        assert last["mood"]["modalities"] == ["face", "voice"]


def test_stream_audio_without_speech_leaves_the_mood_to_the_face(client, frames):
    """Music from the microphone is left out by the voice activity detector, not given an emotion."""
    import soundfile as sf

    t = np.arange(3 * 16000) / 16000
    chord = sum(np.sin(2 * np.pi * f * h * t) / h for f in (220.0, 277.0, 330.0) for h in (1, 2, 3))
    music = (0.3 * chord / np.abs(chord).max() * np.exp(-2 * (t % 0.5))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, music, 16000, format="WAV", subtype="PCM_16")
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(buf.getvalue())
        reply = ws.receive_json()
        assert reply["type"] == "voice" and reply["voice"] is None, reply
        assert "audio chunk: no speech found" in reply["detail"]
        for frame in frames[:4]:
            ws.send_bytes(frame)
            last = ws.receive_json()
        assert last["faces"] and last["mood"]["modalities"] == ["face"]


def test_a_stream_beyond_max_streams_is_closed_with_1013(client):
    with client.websocket_connect("/v1/stream") as first:
        assert first.receive_json()["type"] == "ready"
        assert client.get("/health").json()["streams"] == 1
        with pytest.raises(WebSocketDisconnect) as info:
            with client.websocket_connect("/v1/stream") as second:
                second.receive_json()
        assert info.value.code == 1013
        assert "server busy" in info.value.reason
    with client.websocket_connect("/v1/stream") as again:  # the slot is free again
        assert again.receive_json()["type"] == "ready"
    assert client.get("/health").json()["streams"] == 0


# --- inputs that once crashed the service ------------------------------------------

def thin_png(height: int, width: int) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))[1].tobytes()


@pytest.mark.parametrize("path", ["/v1/face", "/v1/analyze"])
def test_an_extreme_aspect_ratio_is_not_a_server_error(client, path):
    r = client.post(path, files={"image": ("thin.png", thin_png(2, 20000))})
    assert r.status_code == 200, r.text
    assert r.json()["face" if path == "/v1/analyze" else "faces"] in (None, [])


def test_stream_survives_a_frame_with_an_extreme_aspect_ratio(client, frames):
    with client.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(thin_png(1, 4000))
        assert ws.receive_json()["type"] in ("frame", "error")
        ws.send_bytes(frames[0])
        assert ws.receive_json()["type"] == "frame"


def test_an_unusable_audio_upload_is_named_as_the_upload(client):
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000, np.float32), 16000, format="WAV")
    assert_problem(client.post("/v1/voice", files={"audio": ("silent.wav", buf.getvalue())}), 422,
                   "audio upload: silent")


def test_a_silent_live_session_is_closed_and_frees_its_place(settings):
    from dataclasses import replace

    from starlette.websockets import WebSocketDisconnect

    quick = TestClient(create_app(replace(settings, read_timeout=0.5)))
    with quick.websocket_connect("/v1/stream") as ws:
        assert ws.receive_json()["type"] == "ready"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()  # nothing sent: the server gives up after read_timeout
        assert info.value.code == 1000 and "no message" in info.value.reason
    assert quick.get("/health").json()["streams"] == 0

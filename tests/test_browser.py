"""End to end: `moodlens serve` + the live page in headless Chromium with a fake
camera fed from the shared face video.

Needs Debian's chromium (/usr/bin/chromium, installed by .ci/run) and the
playwright package (the dev extra); without them the test is skipped with the
reason. Playwright drives the system Chromium: nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SHARED, need

CHROMIUM = os.environ.get("MOODLENS_CHROMIUM", "/usr/bin/chromium")
VIDEO = SHARED / "media" / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"
SPEECH = SHARED / "ravdess" / "Actor_02" / "03-01-05-02-01-01-02.flac"  # angry (RAVDESS code 05)

# A policy whose choices the test can tell apart: the girl in the video smiles throughout.
POLICY = """\
version: 1
name: browser test
dwell_seconds: 0.5
hysteresis: 0.1
smoothing: 0.5
default: waiting
items:
  waiting: {kind: media, title: Waiting for a mood}
  smile-ad: {kind: ad, title: Smile offer, theme: {background: "#fff4cc", accent: "#e0a000"}}
  comfort: {kind: media, title: Comfort playlist}
rules:
  - {when: happy, min_score: 0.5, show: smile-ad}
  - {when: [sad, fear], min_score: 0.4, show: comfort}
"""


def write_y4m(video: Path, target: Path, width: int = 640, height: int = 360) -> Path:
    """The video as a raw YUV4MPEG2 file, the format Chromium's fake camera reads."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    fps = round(cap.get(cv2.CAP_PROP_FPS) or 25)
    with open(target, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    cap.release()
    return target


def write_wav(clip: Path, target: Path) -> Path:
    """A speech clip as 16-bit WAV, the format Chromium's fake microphone reads (it loops it)."""
    import soundfile as sf

    samples, rate = sf.read(str(clip), dtype="int16")
    sf.write(str(target), samples, rate, subtype="PCM_16")
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, policy: Path, log: Path) -> subprocess.Popen:
    """`moodlens serve` as a user runs it, once it answers /health."""
    import httpx

    with open(log, "ab") as stderr:  # the child keeps its own copy of the file handle
        proc = subprocess.Popen([sys.executable, "-m", "moodlens", "serve", "--port", str(port), "--policy",
                                 str(policy)], stdout=subprocess.DEVNULL, stderr=stderr)
    for _ in range(100):
        if proc.poll() is not None:
            pytest.fail(f"moodlens serve exited with {proc.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    pytest.fail("moodlens serve did not answer /health within 20 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve") / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def server(policy):
    port = free_port()
    proc = start_server(port, policy, policy.with_name("serve.log"))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium chromium-driver (as .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra")
    need(VIDEO)
    need(SPEECH)
    folder = tmp_path_factory.mktemp("camera")
    fake_camera = write_y4m(VIDEO, folder / "face.y4m")
    fake_microphone = write_wav(SPEECH, folder / "speech.wav")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--use-fake-ui-for-media-stream",  # answers the camera permission prompt with "allow"
                  "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_camera}",
                  f"--use-file-for-fake-audio-capture={fake_microphone}"])
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url: str):
    """A fresh page on ``url`` and the list its console errors collect into."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    return page, console_errors


def test_live_page_shows_boxes_labels_and_follows_the_policy(server, browser):
    page, console_errors = open_page(browser, server + "/")
    assert "moodlens" in page.title()
    assert page.is_visible("#consent")  # nothing is captured before the user agrees
    page.click("#start")

    page.wait_for_selector(".face-box", timeout=30_000)
    # Boxes are redrawn on every reply: read one frame's box and label in a single step.
    box = page.evaluate("""() => {
        const b = document.querySelector('.face-box'), r = b.getBoundingClientRect();
        const v = document.getElementById('video').getBoundingClientRect();
        return {label: b.innerText, x: r.x, w: r.width, h: r.height, vx: v.x, vw: v.width};
    }""")
    assert box["label"].startswith("#1 "), box  # one tracked face
    assert "happy" in box["label"], box  # she smiles in every frame
    assert box["w"] > 40 and box["h"] > 40, box
    assert box["vx"] <= box["x"] and box["x"] + box["w"] <= box["vx"] + box["vw"] + 1, box

    # The content panel starts on the policy's default and switches to what the policy shows for "happy".
    page.wait_for_selector("#content[data-item='smile-ad']", timeout=30_000)
    assert page.inner_text("#content-title") == "Smile offer"
    history = page.evaluate("window.moodlens.contentHistory")
    assert history[0] == "waiting" and history[-1] == "smile-ad", history
    assert "happy" in page.inner_text("#content-why")

    # The mood timeline has points and the mood panel names the mood.
    page.wait_for_function("window.moodlens.timeline.filter(p => p.label === 'happy').length >= 3")
    assert page.inner_text("#mood-label").startswith("happy")
    assert not console_errors, console_errors
    if os.environ.get("MOODLENS_SCREENSHOT"):  # a picture of the page, for a person to look at
        page.screenshot(path=os.environ["MOODLENS_SCREENSHOT"])
    page.click("#stop")
    assert page.is_visible("#consent")
    page.close()


def test_microphone_audio_is_classified_and_fused_with_the_face(server, browser):
    page, console_errors = open_page(browser, server + "/")
    page.check("#use-mic")
    page.click("#start")
    # The page sends 3 s WAV chunks of the (fake) microphone; the service classifies each one.
    # The fake microphone loops an angry RAVDESS line (0.93 angry on a chunk when this was written).
    page.wait_for_function("window.moodlens.voice !== null && window.moodlens.voice.label === 'angry'",
                           timeout=30_000)
    voice = page.evaluate("window.moodlens.voice")
    assert voice["status"] == "ok" and voice["duration"] == pytest.approx(3.0, abs=0.05), voice
    assert set(voice["scores"]) >= {"angry", "happy", "calm"}
    # While that result is fresh the mood is fused from both: the panel names both sources.
    page.wait_for_function("document.getElementById('mood-sources').textContent.includes('voice')",
                           timeout=10_000)
    assert "face" in page.inner_text("#mood-sources")
    assert not console_errors, console_errors
    page.click("#stop")
    page.close()


def test_page_reconnects_after_the_service_restarts(policy, browser):
    port = free_port()
    log = policy.with_name("restart.log")
    proc = start_server(port, policy, log)
    try:
        page, _ = open_page(browser, f"http://127.0.0.1:{port}/")  # console errors are expected while it is down
        page.click("#start")
        page.wait_for_function("window.moodlens.frames >= 3", timeout=30_000)
        stop_server(proc)
        page.wait_for_function("document.getElementById('status').textContent.includes('reconnecting')")
        proc = start_server(port, policy, log)
        frames = page.evaluate("window.moodlens.frames")
        page.wait_for_function(f"window.moodlens.frames >= {frames + 3}", timeout=30_000)  # frames flow again
        assert page.evaluate("window.moodlens.sessions") == 2
        page.close()
    finally:
        stop_server(proc)

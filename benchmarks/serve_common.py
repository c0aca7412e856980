"""Helpers for the web-service benchmarks (serve_load, serve_abuse, serve_fuzz):
a `moodlens serve` subprocess on a free loopback port, its memory, its log."""

from __future__ import annotations

import math
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx

from common import MEDIA, SHARED

HOST = "127.0.0.1"
PHOTO = MEDIA / "two_people.jpg"
SPEECH = SHARED / "ravdess" / "Actor_01" / "03-01-05-01-01-01-01.flac"  # angry, 3.9 s, 16 kHz
VIDEO = MEDIA / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``with Server(["--workers", "2"]) as srv:`` runs `moodlens serve` on
    127.0.0.1 until the block ends (normally, on an error or on Ctrl+C).
    Its stderr goes to a temporary file: ``srv.log()``, ``srv.tracebacks()``."""

    def __init__(self, args: list[str] | None = None, start_timeout: float = 120.0):
        self.args = args or []
        self.start_timeout = start_timeout
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        # SIGTERM (e.g. from `timeout`) unwinds like Ctrl+C, so the server is stopped too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        self.stderr = tempfile.TemporaryFile(mode="w+b")
        cmd = [sys.executable, "-m", "moodlens", "serve", "--host", HOST, "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.stderr)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"moodlens serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"moodlens serve did not answer /health within {self.start_timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def memory_mib(self, field: str = "VmRSS") -> float:
        """VmRSS (resident now) or VmHWM (peak resident) of the server process, MiB."""
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field} in /proc/{self.proc.pid}/status")

    def log(self) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def tracebacks(self) -> list[str]:
        """Tracebacks the server wrote to stderr (each from its 'Traceback' line to its last line)."""
        found, current = [], None
        for line in self.log().splitlines():
            if line.startswith("Traceback"):
                current = [line]
                found.append(current)
            elif current is not None:
                current.append(line)
                if line and not line.startswith((" ", "\t")) and not line.startswith(("Traceback", "During", "The above")):
                    current = None  # the exception line ends it
        return ["\n".join(t) for t in found]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest rank; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def report_tracebacks(server: Server) -> int:
    """Print the server's tracebacks (the last lines of each); returns how many."""
    tbs = server.tracebacks()
    if tbs:
        print(f"\n## Server tracebacks on stderr: {len(tbs)}\n")
        for tb in tbs[:5]:
            lines = tb.splitlines()
            print("\n".join(lines[:1] + ["  ..."] + lines[-8:]) + "\n")
    return len(tbs)


def ensure_inputs() -> None:
    for path in (PHOTO, SPEECH, VIDEO):
        if not path.exists():
            raise SystemExit(f"{path} is missing: the serve benchmarks read the shared data (set MOODLENS_SHARED_DATA)")


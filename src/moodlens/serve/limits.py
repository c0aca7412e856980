"""Limits that protect the service from slow, idle, oversize or too many
requests, below the routes: an ASGI middleware for request bodies and a
uvicorn protocol with a deadline for request headers."""

import asyncio
import json
import logging

log = logging.getLogger("moodlens.serve")


class BodyLimit:
    """ASGI middleware: reads an HTTP request body up to ``limit`` bytes
    (413 beyond it, 408 if it takes longer than ``timeout``) before the app
    sees it, so no handler ever parses an oversize or endless upload. At most
    ``max_bodies`` requests with a body are in the service at once (503 for
    more, before reading): each holds a few copies of its body in memory."""

    def __init__(self, app, limit: int, timeout: float, max_bodies: int):
        self.app, self.limit, self.timeout, self.max_bodies = app, limit, timeout, max_bodies
        self.bodies = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and not length.isdigit():
            return await _error(send, 400, f"Content-Length {length.decode(errors='replace')!r} is not a number")
        if length is not None and int(length) > self.limit:
            return await _error(send, 413, f"request body of {length.decode(errors='replace')} bytes is over "
                                           f"the limit of {self.limit} bytes")
        if self.bodies >= self.max_bodies:
            return await _error(send, 503, "server busy: too many uploads in progress; retry shortly",
                                retry_after=1)
        self.bodies += 1
        try:
            await self.read_then_call(scope, receive, send)
        finally:
            self.bodies -= 1

    async def read_then_call(self, scope, receive, send):
        body = bytearray()

        async def read_body() -> str:  # "ok", "disconnect" or "too large"
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return "disconnect"
                body.extend(message.get("body", b""))
                if len(body) > self.limit:
                    return "too large"
                if not message.get("more_body"):
                    return "ok"

        try:
            outcome = await asyncio.wait_for(read_body(), self.timeout)
        except asyncio.TimeoutError:
            return await _error(send, 408, f"request body not received within {self.timeout:.0f} s")
        if outcome == "disconnect":
            return
        if outcome == "too large":
            return await _error(send, 413, f"request body is over the limit of {self.limit} bytes")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                data = bytes(body)
                body.clear()  # one copy of the body is enough
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def header_deadline_protocol(seconds: float):
    """uvicorn's httptools protocol with a deadline for each request's headers:
    uvicorn has none, so a client that sends nothing, or its headers a byte at
    a time, holds a connection for ever (and enough of them, every socket)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # uvicorn without httptools (not the [serve] extra's uvicorn[standard])
        log.warning("httptools is missing: no deadline for request headers (slow clients can hold connections)")
        return "auto"

    class Protocol(HttpToolsProtocol):
        header_timer = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self.arm()

        def on_message_begin(self):  # the next request on a kept-alive connection
            super().on_message_begin()
            if self.header_timer is None:
                self.arm()

        def on_headers_complete(self):
            self.disarm()
            super().on_headers_complete()

        def connection_lost(self, exc):
            self.disarm()
            super().connection_lost(exc)

        def arm(self):
            self.header_timer = self.loop.call_later(seconds, self.transport.close)

        def disarm(self):
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

    return Protocol


def same_origin(origin: str, host: str) -> bool:
    from urllib.parse import urlsplit

    return urlsplit(origin).netloc == host


async def _error(send, status: int, detail: str, retry_after: int | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"connection", b"close")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})

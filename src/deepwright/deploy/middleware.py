"""The server's ASGI middleware, outermost first: a structured access log, the bearer token, the body size limit.

Each is plain ASGI (no per-request task or body copy beyond what it must do), and each answers a refused request
itself with a JSON body {"error": message}.

The access log is one JSON object per request on the `deepwright.access` logger, e.g.

    {"time": "2025-01-01T12:00:00.123Z", "level": "info", "event": "request", "request_id": "5f0c…",
     "method": "POST", "path": "/predict", "status": 200, "duration_ms": 1.42, "rows": 1,
     "bytes_in": 187, "bytes_out": 71, "client": "127.0.0.1"}
"""

from __future__ import annotations

import datetime
import hmac
import itertools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["AccessLog", "BearerToken", "BodyLimit", "JsonFormatter", "json_error"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

ACCESS_LOGGER = logging.getLogger("deepwright.access")
_ID_PREFIX = os.urandom(4).hex()  # request ids: this server's random prefix, then a count
_ID_COUNTER = itertools.count()


async def json_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer a request with `status` and the JSON body {"error": message}."""
    body = json.dumps({"error": message}).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start_headers + list(headers)})
    await send({"type": "http.response.body", "body": body})


class AccessLog:
    """Logs every HTTP request as one JSON line (see the module docstring) and answers with an `x-request-id`
    header: the caller's own `x-request-id` when it sent one, else a new one. A route can add fields to the
    line through `request.state.log` (a dict)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        fields: dict[str, Any] = {}
        state = scope.setdefault("state", {})
        state["log"], state["request_id"] = fields, request_id
        outcome = {"status": 500, "bytes_in": 0, "bytes_out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            outcome["bytes_in"] += len(message.get("body", b""))
            return message

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body":
                outcome["bytes_out"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, logging_send)
        finally:
            if ACCESS_LOGGER.isEnabledFor(logging.INFO):
                client = scope.get("client")
                record = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": outcome["status"],
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                    **fields,
                    "bytes_in": outcome["bytes_in"],
                    "bytes_out": outcome["bytes_out"],
                    "client": client[0] if client else None,
                }
                ACCESS_LOGGER.info("request", extra={"fields": record})


class BearerToken:
    """Refuses (401) every request without `Authorization: Bearer <token>`, except to the public paths: the
    health check and the web page's files (the page asks for the token itself)."""

    def __init__(self, app: App, token: str, public: Callable[[str], bool]) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.public(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if given is None or not hmac.compare_digest(given, self.expected):
            problem = "missing" if given is None else "invalid"
            await json_error(
                send,
                401,
                f"{problem} bearer token; send the header 'Authorization: Bearer <token>' with the server's token",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses (413) a request body larger than `max_bytes`, by its Content-Length before reading anything, or
    while reading a body sent without one; and (503, with Retry-After) a body that would take the bytes of the
    bodies being received or served at once above `max_bytes_in_flight`, so that many large uploads together
    cannot exhaust the memory."""

    def __init__(self, app: App, max_bytes: int, max_bytes_in_flight: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_in_flight = max_bytes_in_flight if max_bytes_in_flight is not None else 8 * max_bytes
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await json_error(send, 400, "the Content-Length header is not a number")
                return
            if int(length) > self.max_bytes:
                await self._refuse(send, int(length))
                return
            await self._within_budget(int(length), scope, receive, send)
            return
        messages, total = [], 0  # no Content-Length (chunked): read the body first, within the limit
        while True:
            message = await receive()
            messages.append(message)
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                await self._refuse(send, total, at_least=True)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self._within_budget(total, scope, replay, send)

    async def _within_budget(self, size: int, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request while its body counts against the bytes in flight, or refuse it (503)."""
        if size and self.in_flight + size > self.max_in_flight:
            await json_error(
                send,
                503,
                f"the server is receiving {self.in_flight:,} bytes of other requests (at most "
                f"{self.max_in_flight:,}); try again shortly",
                [(b"retry-after", b"1")],
            )
            return
        self.in_flight += size
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= size

    async def _refuse(self, send: Send, size: int, *, at_least: bool = False) -> None:
        what = f"over {self.max_bytes:,}" if at_least else f"{size:,}"
        await json_error(
            send,
            413,
            f"the body is {what} bytes, above the server's limit of {self.max_bytes:,} bytes; send fewer rows per "
            "request, or start the server with a larger --max-body-mb",
        )


class JsonFormatter(logging.Formatter):
    """Formats a log record as one JSON object: time (UTC), level, event (the message), and its `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        entry = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _request_id(scope: Scope) -> str:
    """The caller's x-request-id (printable, at most 64 characters), or a new one, unique in this server's run."""
    given = dict(scope["headers"]).get(b"x-request-id", b"")
    if given and len(given) <= 64 and given.isascii() and given.decode().isprintable():
        return given.decode()
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"

"""Pure-ASGI middleware binding a request id into the log context of each request."""

from __future__ import annotations

import itertools
import secrets

import structlog
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count()


def request_id(given: str | None) -> str:
    """The client's X-Request-ID (64 characters at most), or a new one."""
    if given:
        return given[:64]
    # unique, not secret: a process prefix and a counter (no syscall per request)
    return f"{_PREFIX}{next(_COUNTER):08x}"


class RequestContext:
    """Take X-Request-ID (or make one), bind it for structlog, echo it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @classmethod
    def middleware(cls) -> Middleware:
        return Middleware(cls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = request_id(given)
        raw = rid.encode("latin-1")
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", raw)]
            await send(message)

        await self.app(scope, receive, send_with_id)

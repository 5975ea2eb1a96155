"""The flash sale's hot paths as raw ASGI, ahead of Starlette's stack.

When a sale opens, nearly all the traffic is three requests: `POST
/v1/routes/{route_id}/bookings` (most answers refusals that cost a few microseconds of
ticketd's own work), and a crowd joining and polling a sale's queue (`POST` and `GET
/v1/sales/{sale_id}/queue`, answered from memory). What such a request then spends in
the framework (routing, the Request object, the exception and error middleware, the
per-request context) is most of its cost, so the application (`Ticketd`, a Starlette)
takes those paths itself before any of its middleware: it reads the headers (and body)
from the ASGI messages, runs the same endpoint core with the same error mapping and
metrics (its `Guard`), binds the request id for the logs and echoes it, as the
request-context middleware does for every other path, and sends the answer. Every
other request goes through Starlette unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from server.api import bookings, sales
from server.api.common import Guard, receive_body
from server.api.middleware import request_id
from server.api.services import Services

Headers = dict[bytes, str]
#: an endpoint's core, given the path's one parameter, the headers and the body's reader
Core = Callable[[Services, str, Headers, Callable[[], Awaitable[bytes]]], Awaitable[Response]]


def _book(svc: Services, route_id: str, headers: Headers,
          body: Callable[[], Awaitable[bytes]]) -> Awaitable[Response]:  # fmt: skip
    return bookings.place(svc, route_id, headers, body)


def _join(svc: Services, sale_id: str, headers: Headers,
          body: Callable[[], Awaitable[bytes]]) -> Awaitable[Response]:  # fmt: skip
    return sales.join(svc, sale_id, headers)


def _poll(svc: Services, sale_id: str, headers: Headers,
          body: Callable[[], Awaitable[bytes]]) -> Awaitable[Response]:  # fmt: skip
    return sales.poll(svc, sale_id, headers)


#: (method, path prefix, path suffix) -> the endpoint's guard and core
_PATHS: dict[tuple[str, str, str], tuple[Guard, Core]] = {
    ("POST", "/v1/routes/", "/bookings"): (bookings.BOOK, _book),
    ("POST", "/v1/sales/", "/queue"): (sales.JOIN, _join),
    ("GET", "/v1/sales/", "/queue"): (sales.POLL, _poll),
}


def _match(method: str, path: str) -> tuple[Guard, Core, str] | None:
    """The hot endpoint a request is for, and its path parameter; None for the rest."""
    for (m, prefix, suffix), (guard, core) in _PATHS.items():
        if m == method and path.startswith(prefix) and path.endswith(suffix):
            param = path[len(prefix) : -len(suffix)]
            if param and "/" not in param:
                return guard, core, param
    return None


class Ticketd(Starlette):
    """Starlette, with the hot paths served ahead of its whole stack, its outermost
    error middleware too: each hot endpoint's guard maps every error itself, and a
    response is sent in two messages that cannot half-fail on our side."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None if scope["type"] != "http" else _match(scope["method"], scope["path"])
        if found is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        guard, core, param = found
        # one pass over the headers: their values by lower-case name, and the request id
        headers = {k: v.decode("latin-1") for k, v in scope["headers"]}
        rid = request_id(headers.get(b"x-request-id"))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)

        async def body() -> bytes:
            return await receive_body(receive)

        response = await guard.run(scope["method"], core(self.state.services, param, headers, body))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [*response.raw_headers, (b"x-request-id", rid.encode("latin-1"))],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

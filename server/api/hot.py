"""The booking hot path as raw ASGI, ahead of Starlette's stack.

When a sale opens, `POST /v1/routes/{route_id}/bookings` is nearly all the traffic, and
most answers are refusals that cost a few microseconds of ticketd's own work. What a
request then spends in the framework (routing, the Request object, the exception and
error middleware, the per-request context) is most of its cost, so this middleware, the
outermost of ticketd's own, takes that one route itself: it reads the headers and body
from the ASGI messages, runs the same endpoint (`bookings.place`, with the same error
mapping and metrics, `bookings.BOOK`), binds the request id for the logs and echoes it,
as the request-context middleware does for every other path, and sends the answer.
Every other request goes on to Starlette unchanged.
"""

from __future__ import annotations

import structlog
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api import bookings
from server.api.common import receive_body
from server.api.middleware import request_id

_PREFIX, _SUFFIX = "/v1/routes/", "/bookings"


class HotPath:
    """Serve POST /v1/routes/{route_id}/bookings without Starlette's layers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @classmethod
    def middleware(cls) -> Middleware:
        return Middleware(cls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        route_id = path[len(_PREFIX) : -len(_SUFFIX)]
        if (
            not (path.startswith(_PREFIX) and path.endswith(_SUFFIX))
            or not route_id
            or ("/" in route_id)
        ):
            await self.app(scope, receive, send)
            return
        # one pass over the headers: their values by lower-case name, and the request id
        headers = {k: v.decode("latin-1") for k, v in scope["headers"]}
        rid = request_id(headers.get(b"x-request-id"))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)

        async def body() -> bytes:
            return await receive_body(receive)

        svc = scope["app"].state.services
        response = await bookings.BOOK.run("POST", bookings.place(svc, route_id, headers, body))
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [*response.raw_headers, (b"x-request-id", rid.encode("latin-1"))],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

"""RFC 9457 problem responses, and the one table mapping problem slugs to HTTP status."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.responses import Response

#: every problem `type` the service answers, with its status and title
STATUS: dict[str, tuple[int, str]] = {
    "malformed-json": (400, "Malformed JSON"),
    "missing-idempotency-key": (400, "Idempotency-Key header required"),
    "bad-request": (400, "Bad request"),
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Not allowed"),
    "not-admitted": (403, "Admission required"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "sold-out": (409, "Sold out"),
    "seat-taken": (409, "Seat taken"),
    "passenger-conflict": (409, "Passenger already travelling"),
    "invalid-state": (409, "Booking is not in a state that allows this"),
    "hold-expired": (409, "Hold expired"),
    "route-conflict": (409, "A different route with this id exists"),
    "sale-conflict": (409, "Route already in a sale"),
    "payload-too-large": (413, "Request body too large"),
    "unsupported-media-type": (415, "JSON required"),
    "validation": (422, "Invalid request"),
    "unknown-station": (422, "Unknown station"),
    "unknown-class": (422, "Unknown seat class"),
    "bad-trip": (422, "Trip is empty or reversed"),
    "idempotency-mismatch": (422, "Idempotency-Key reused with a different request"),
    "too-many-bookings": (429, "Booking limit reached"),
    "polling-too-fast": (429, "Polling too fast"),
    "unavailable": (503, "Temporarily unavailable"),
    "overloaded": (503, "Overloaded"),
    "internal": (500, "Internal error"),
}

#: statuses that tell a client to come back later
RETRY_AFTER = {"unavailable": "1", "overloaded": "1", "too-many-bookings": "60"}


class Problem(Exception):
    """Raise anywhere in a request to answer with this problem."""

    def __init__(self, type_: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.type = type_
        self.detail = detail
        self.extra = extra


def problem_response(
    type_: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An application/problem+json response for a known slug."""
    status, title = STATUS.get(type_, (500, "Internal error"))
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    hdrs = dict(headers or {})
    if type_ in RETRY_AFTER:
        hdrs.setdefault("Retry-After", RETRY_AFTER[type_])
    if status == 401:
        hdrs.setdefault("WWW-Authenticate", 'Bearer realm="ticketd"')
    return Response(
        msgspec.json.encode(body),
        status_code=status,
        headers=hdrs,
        media_type="application/problem+json",
    )


def from_domain(error: dict[str, Any]) -> Response:
    """Map a domain error (as sent back by an actor) to its problem response."""
    data = {k: v for k, v in error.items() if k not in ("type", "title", "detail")}
    return problem_response(error["type"], error["detail"], data)

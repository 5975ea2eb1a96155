"""One endpoint of the HTTP contract, as data: the handler that serves it and what it
documents.

`server/contract.py` lists every endpoint once. The Starlette routes (`starlette_routes`) and
/openapi.json (`server/api/openapi.py`) are both made from that list and from the msgspec
types an endpoint names, so what is served and what is documented cannot drift apart
(docs/architecture.md, "The HTTP contract's rules").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]
Param = dict[str, Any]

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: JSON of a msgspec type, or a string in other media types."""

    description: str
    type: type | None = None
    media: tuple[str, ...] = (JSON,)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method on one path, and everything /openapi.json says about it."""

    method: str
    path: str
    handler: Handler
    summary: str
    #: status -> answer; problem answers are listed by slug in `problems`
    ok: Mapping[int, Reply]
    #: the problem slugs it can answer (server/api/problems.py gives each its status)
    problems: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    #: the msgspec type of its JSON body, if it takes one
    body: type | None = None
    #: needs a bearer token (every endpoint not reading public timetable data)
    auth: bool = False
    description: str | None = None


def starlette_routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """The Starlette routes of `endpoints`, in their order (Starlette tries them in turn)."""
    return [Route(e.path, e.handler, methods=[e.method]) for e in endpoints]


# ---- the parameters and problem groups endpoints share -------------------------------------

#: problems of an endpoint reading a JSON body
BODY_ERRORS = ("malformed-json", "validation", "payload-too-large", "unsupported-media-type")
#: problems of an endpoint that asks a route actor
CALL_ERRORS = ("unavailable", "overloaded")
#: problems of an admin-only endpoint
ADMIN_ERRORS = ("unauthorized", "forbidden", "validation")

ROUTE_ID_PATTERN = "^[A-Z0-9]{1,12}-[0-9]{8}$"
DATE: dict[str, Any] = {"format": "date", "examples": ["2026-12-01"]}
STATION: dict[str, Any] = {"minLength": 1, "maxLength": 64}


def path_param(name: str) -> Param:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def query(name: str, description: str, required: bool = False, **schema: Any) -> Param:
    """A string query parameter (`schema` adds to its JSON schema)."""
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


def integer(name: str, description: str, low: int, high: int, default: int | None = None
            ) -> Param:  # fmt: skip
    """An optional integer query parameter in [low, high]."""
    schema: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": high}
    if default is not None:
        schema["default"] = default
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


def page(most: int, default: int, cursor: str) -> tuple[Param, ...]:
    """The parameters of a paginated list: `limit`, and `cursor` of the pattern given."""
    return (
        integer("limit", "Items per page", 1, most, default),
        query("cursor", "next_cursor of the previous page", pattern=cursor),
    )


ROUTE_ID = path_param("route_id")
BOOKING_ID = path_param("booking_id")
IDEMPOTENCY_KEY: Param = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Unique per booking attempt; a retry with the same key and body gets the "
    "first answer.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"},
}

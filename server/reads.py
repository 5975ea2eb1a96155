"""Buyer and catalogue reads that wake no route actor: search, own bookings, route pages.

Each answers from this front end's state or from Redis in O(page): the
station index of a date (server/search.py), the users' booking lists the
actors write with their journal appends (actors/storage/user_index.py), and the
route indexes written with each definition (actors/storage/routes_store.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.domain.route import is_route_id
from actors.storage import routes_store, user_index
from server.auth import Authenticator
from server.gateway import Gateway
from server.http import endpoint, json_response, route_of_booking
from server.problems import Problem
from server.search import Search

#: page sizes: default and most per page
ROUTES_PAGE = (100, 1000)
BOOKINGS_PAGE = (20, 100)
#: the most seats one booking may ask for (the `seats` search filter goes up to it)
MAX_PARTY = 5


@dataclass(frozen=True, slots=True)
class Reads:
    auth: Authenticator
    gateway: Gateway
    search: Search
    users: user_index.UserIndex


def _reads(request: Request) -> Reads:
    reads: Reads = request.app.state.reads
    return reads


# ---- query parameters -------------------------------------------------------------------


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and each one this endpoint knows."""
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise Problem(
                "validation",
                f"Unknown query parameter {name!r}; this endpoint takes {', '.join(allowed)}.",
            )
        if name in out:
            raise Problem("validation", f"Give the query parameter {name!r} only once.")
        out[name] = value
    return out


def _date(value: str | None, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not value:
        raise Problem("validation", "Give the travel date as ?date=YYYY-MM-DD.")
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != value:
        raise Problem("validation", f"Date {value!r} must be a calendar date as YYYY-MM-DD.")
    return value


def _station(name: str, value: str | None) -> str:
    if not value or len(value) > 64:
        raise Problem(
            "validation", f"Give {name!r} as a station name of 1 to 64 characters, e.g. ?{name}=A."
        )
    return value


def _whole(name: str, value: str | None, default: int, most: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise Problem("validation", f"{name!r} must be a whole number from 1 to {most}.")
    return int(value)


def _cursor(value: str | None, valid: Callable[[str], bool]) -> str | None:
    # a cursor is the position a page ended at (a route id, or a list position): any value
    # of that shape is a place to start after
    if value is not None and not valid(value):
        raise _bad_cursor()
    return value


def _bad_cursor() -> Problem:
    return Problem(
        "validation",
        "This cursor was not handed out by this endpoint; pass the next_cursor of the "
        "previous page, or leave it out for the first page.",
    )


# ---- endpoints --------------------------------------------------------------------------


@endpoint("search")
async def search(request: Request) -> Response:
    reads = _reads(request)
    query: bytes = request.scope["query_string"]
    body = reads.search.cached(query)
    if body is not None:
        return Response(body, media_type="application/json")
    q = _params(request, ("from", "to", "date", "class", "seats"))
    date = _date(q.get("date"), required=True)
    assert date is not None
    from_, to = _station("from", q.get("from")), _station("to", q.get("to"))
    if from_ == to:
        raise Problem(
            "bad-trip", f"'from' and 'to' are both {from_!r}; 'to' must be a different station."
        )
    klass = q.get("class")
    if klass is not None and not 1 <= len(klass) <= 32:
        raise Problem("validation", "Give 'class' as a seat class name, e.g. ?class=second.")
    seats = _whole("seats", q.get("seats"), 0, MAX_PARTY)
    index = await reads.search.date(date)
    for station in (from_, to):
        if station not in index.stops and not await reads.search.station_known(station):
            # 404, not the 422 of a trip on a known route: the station itself is not there
            raise Problem(
                "not-found",
                f"No train stops at {station!r}; check the spelling (GET /v1/routes lists "
                "routes with their stations).",
                station=station,
            )
    body = await reads.search.answer(query, date, from_, to, klass, seats)
    return Response(body, media_type="application/json")


@endpoint("own_bookings")
async def own_bookings(request: Request) -> Response:
    reads = _reads(request)
    user = reads.auth.user(request.headers.get("authorization"))
    q = _params(request, ("limit", "cursor"))
    limit = _whole("limit", q.get("limit"), *BOOKINGS_PAGE)
    after = _cursor(q.get("cursor"), user_index.is_member)
    records, last = await reads.users.page(user.id, after, limit)
    out = []
    for rec in records:
        # the route's definition only (cached after the first read): never its actor
        ch = await reads.gateway.channel(route_of_booking(rec.booking_id))
        out.append(ch.view.booking(rec))
    return json_response({"bookings": out, "next_cursor": last})


@endpoint("list_routes")
async def list_routes(request: Request) -> Response:
    reads = _reads(request)
    q = _params(request, ("date", "station", "limit", "cursor"))
    date = _date(q.get("date"), required=False)
    station = None if "station" not in q else _station("station", q["station"])
    limit = _whole("limit", q.get("limit"), *ROUTES_PAGE)
    after = _cursor(q.get("cursor"), is_route_id)
    routes, last = await routes_store.page(reads.gateway.client, date, station, after, limit)
    return json_response({"routes": [r.to_dict() for r in routes], "next_cursor": last})


ROUTES = [
    Route("/v1/search", search, methods=["GET"]),
    Route("/v1/bookings", own_bookings, methods=["GET"]),
    Route("/v1/routes", list_routes, methods=["GET"]),
]

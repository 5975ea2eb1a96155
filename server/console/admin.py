"""The operator console's JSON (admin only): routes of a date, the sales curve, the route
actors, the front end's own figures. /ops polls these; none scrapes /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response

from server.api import query
from server.api.common import endpoint, json_response
from server.api.problems import Problem
from server.api.services import services
from server.console import payloads as out
from server.console.context import Console
from server.console.sampler import HISTORY, Sampler
from server.console.seats import SeatMaps
from server.dispatch.errors import DispatchError

log = structlog.get_logger("ticketd.console")


def _admin(request: Request) -> Console:
    request.app.state.services.auth.admin(request.headers.get("authorization"))
    console: Console = request.app.state.console
    return console


def _only(request: Request, allowed: tuple[str, ...]) -> None:
    for name in request.query_params:
        if name not in allowed:
            takes = ", ".join(allowed) if allowed else "no query parameters"
            raise Problem("validation", f"Unknown query parameter {name!r}; this takes {takes}.")


@endpoint("admin_routes")
async def admin_routes(request: Request) -> Response:
    console = _admin(request)
    _only(request, ("date",))
    date = request.query_params.get("date", "")
    query.date(date, required=True)  # the same rule (and sentence) as search's
    reads = services(request)
    maps: SeatMaps = console.seat_maps
    index = await reads.search.date(date)
    try:
        _, live = await console.actors.look()
    except Problem:
        live = frozenset()  # Ray does not answer: every route as if idle, nothing woken
    routes = [index.routes[rid] for rid in sorted(index.routes)]

    async def row(route: Any) -> out.AdminRoute:
        total = len(route.seats())
        if route.route_id in live:
            try:
                got = await maps.get(await reads.gateway.channel(route.route_id))
            except DispatchError:
                got = None
            if got is not None:
                m = got.seats
                free = sum(1 for b in m.bits if not b)
                return out.AdminRoute(route.route_id, route.train, total, free, True,
                                      m.sold, m.held, m.waitlisted)  # fmt: skip
        # an idle route: free seats from the availability its actor stored, nothing woken
        stations = route.stations
        trains = await reads.search.trains(date, stations[0], stations[-1])
        free = next(
            (sum(t.availability.values()) for t in trains if t.route.route_id == route.route_id),
            total,
        )
        return out.AdminRoute(route.route_id, route.train, total, free, False, None, None, None)

    rows = await asyncio.gather(*(row(r) for r in routes))
    return json_response(out.AdminRoutes(date, list(rows)))


@endpoint("admin_sales")
async def admin_sales(request: Request) -> Response:
    console = _admin(request)
    _only(request, ("seconds",))
    raw = request.query_params.get("seconds", "300")
    if not raw.isdigit() or not 1 <= int(raw) <= HISTORY:
        raise Problem("validation", f"'seconds' must be a whole number from 1 to {HISTORY}.")
    sampler: Sampler = console.sampler
    return json_response(sampler.sales(int(raw)))


@endpoint("admin_actors")
async def admin_actors(request: Request) -> Response:
    console = _admin(request)
    _only(request, ())
    actors, _ = await console.actors.look()
    return json_response(actors)


@endpoint("admin_frontend")
async def admin_frontend(request: Request) -> Response:
    console = _admin(request)
    _only(request, ())
    sampler: Sampler = console.sampler
    return json_response(sampler.frontend())

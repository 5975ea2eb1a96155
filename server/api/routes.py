"""The `/v1/routes` resource: define a route, read it, its availability, its timetable pages,
and (admin) every booking on it."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from actors.domain.errors import DomainError
from actors.domain.messages import ListBookings
from actors.domain.route import RouteDef, is_route_id
from actors.storage import routes_store
from server.api import query, render, schemas
from server.api.common import endpoint, json_response, read_json
from server.api.problems import Problem, from_domain
from server.api.services import services, trip


@endpoint("create_route")
async def create_route(request: Request) -> Response:
    svc = services(request)
    svc.auth.admin(request.headers.get("authorization"))
    body = await read_json(request, schemas.route_in)
    try:
        route = RouteDef.from_dict(msgspec.to_builtins(body))
    except DomainError as err:
        raise Problem("validation", err.detail) from None
    created, stored = await routes_store.create(svc.client, route)
    if not created and stored != route:
        raise Problem(
            "route-conflict",
            f"Route {route.route_id} already exists with a different definition; "
            "routes cannot be changed once created.",
            route_id=route.route_id,
        )
    return json_response(stored.to_dict(), 201 if created else 200)


@endpoint("get_route")
async def get_route(request: Request) -> Response:
    ch = await services(request).gateway.channel(request.path_params["route_id"])
    return json_response(ch.route.to_dict())


@endpoint("availability")
async def availability(request: Request) -> Response:
    svc = services(request)
    ch = await svc.gateway.channel(request.path_params["route_id"])
    from_, to = request.query_params.get("from"), request.query_params.get("to")
    if not from_ or not to:
        raise Problem(
            "validation", "Give the trip as query parameters ?from=<station>&to=<station>."
        )
    i, j = trip(ch, from_, to)
    matrix = await svc.gateway.matrix(ch)
    return json_response(
        {
            "route_id": ch.route.route_id,
            "from": from_,
            "to": to,
            "availability": render.view(ch.route).trip(matrix, i, j),
        }
    )


@endpoint("list_routes")
async def list_routes(request: Request) -> Response:
    svc = services(request)
    q = query.params(request, ("date", "station", "limit", "cursor"))
    date = query.date(q.get("date"), required=False)
    station = None if "station" not in q else query.station("station", q["station"])
    limit = query.whole("limit", q.get("limit"), *query.ROUTES_PAGE)
    after = query.cursor(q.get("cursor"), is_route_id)
    routes, last = await routes_store.page(svc.client, date, station, after, limit)
    return json_response({"routes": [r.to_dict() for r in routes], "next_cursor": last})


@endpoint("route_bookings")
async def route_bookings(request: Request) -> Response:
    svc = services(request)
    svc.auth.admin(request.headers.get("authorization"))
    ch = await svc.gateway.channel(request.path_params["route_id"])
    res = await svc.gateway.call(ch, ListBookings())
    if not res.ok:
        assert res.error is not None
        return from_domain(res.error)
    records = res.records or []
    view = render.view(ch.route)
    return json_response({"bookings": [view.booking(r, admin=True) for r in records]})

"""The Starlette application: the HTTP contract of DESIGN.md §5."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import msgspec
import redis.asyncio as aredis
import structlog
from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors import routes_store
from actors.config import ActorConfig
from actors.directory import Directory
from actors.errors import DomainError, SoldOut
from actors.messages import Book, Cancel, Change, Confirm, GetBooking, ListBookings, Passenger
from actors.persistence import check_persistence
from actors.route import RouteDef, pair_index, resolve_trip
from actors.user_index import UserIndex
from actors.views import Result
from server import console, metrics, openapi, reads, schemas
from server.auth import Authenticator
from server.gateway import Channel, Gateway
from server.http import (
    endpoint,
    idempotency_key,
    json_response,
    new_booking_id,
    raw_headers,
    read_json,
    route_of_booking,
)
from server.middleware import RequestContext
from server.problems import Problem, from_domain, problem_response
from server.runtime import Runtime
from server.search import Search
from server.settings import Settings

log = structlog.get_logger("ticketd.app")

_STATUS_OF_KIND = {"created": 201, "waitlisted": 202, "ok": 200}
#: idempotency keys this front end forwarded recently: their repeats must reach the actor
#: (which answers the first result) even when the snapshot says sold out
_SEEN_KEYS_MAX = 200_000
#: Redis connections of one front end (route definitions, listing, readiness)
_REDIS_CONNECTIONS = 64


@dataclass(slots=True)
class Services:
    settings: Settings
    auth: Authenticator
    gateway: Gateway
    client: aredis.Redis
    seen_keys: OrderedDict[tuple[str, str], None]


def _svc(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _answer(ch: Channel, res: Result, admin: bool = False) -> Response:
    if not res.ok:
        assert res.error is not None
        return from_domain(res.error)
    assert res.record is not None
    return json_response(ch.view.booking(res.record, admin), _STATUS_OF_KIND[res.kind])


def _trip(ch: Channel, from_: str, to: str, klass: str | None = None) -> tuple[int, int]:
    """Validate a trip against the route on the front end: bad input never costs a call."""
    return resolve_trip(ch.route.route_id, ch.station_index, ch.classes, from_, to, klass)


# ---- routes ---------------------------------------------------------------------------


@endpoint("create_route")
async def create_route(request: Request) -> Response:
    svc = _svc(request)
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
    ch = await _svc(request).gateway.channel(request.path_params["route_id"])
    return json_response(ch.route.to_dict())


@endpoint("availability")
async def availability(request: Request) -> Response:
    svc = _svc(request)
    ch = await svc.gateway.channel(request.path_params["route_id"])
    from_, to = request.query_params.get("from"), request.query_params.get("to")
    if not from_ or not to:
        raise Problem(
            "validation", "Give the trip as query parameters ?from=<station>&to=<station>."
        )
    i, j = _trip(ch, from_, to)
    matrix = await svc.gateway.matrix(ch)
    return json_response(
        {
            "route_id": ch.route.route_id,
            "from": from_,
            "to": to,
            "availability": ch.view.trip(matrix, i, j),
        }
    )


# ---- bookings -------------------------------------------------------------------------


@endpoint("book")
async def book(request: Request) -> Response:
    svc = _svc(request)
    headers = raw_headers(request)  # one pass over the headers: this path is hot
    user = svc.auth.user(headers.get(b"authorization"))
    key = idempotency_key(headers.get(b"idempotency-key"))
    ch = await svc.gateway.channel(request.path_params["route_id"])
    svc.gateway.admit(ch)  # before reading and hashing the body
    body = await read_json(request, schemas.booking_in, headers)
    i, j = _trip(ch, body.from_, body.to, body.klass)
    picked = console.picked_seats(ch, body) if body.seats else []
    route_id = ch.route.route_id
    # the fingerprint tells a retry (same body) from a reuse of the key (different body)
    fingerprint = hashlib.sha256(route_id.encode() + msgspec.json.encode(body)).hexdigest()[:32]
    scoped = (user.id, key)
    n = len(body.passengers)
    if not body.waitlist and scoped not in svc.seen_keys:
        matrix = svc.gateway.fresh_matrix(ch)
        sold_out = matrix is not None and matrix[body.klass][pair_index(i, j, ch.view.n)] < n
        # sold out per a snapshot at most AVAILABILITY_REFRESH old: no actor call, unless
        # some front end already forwarded this key (then only the actor knows the answer)
        if sold_out and await svc.gateway.first_sight(route_id, user.id, key):
            metrics.SOLD_OUT_CACHED.inc()
            return from_domain(SoldOut(route_id, body.klass, body.from_, body.to, n).to_dict())
    svc.seen_keys[scoped] = None
    if len(svc.seen_keys) > _SEEN_KEYS_MAX:
        svc.seen_keys.popitem(last=False)
    cmd = Book(
        new_booking_id(route_id), user.id, key, fingerprint, body.from_, body.to, body.klass,
        [Passenger(p.name, p.id) for p in body.passengers], body.seat_letters, body.together,
        body.waitlist, picked,
    )  # fmt: skip
    return _answer(ch, await svc.gateway.call(ch, cmd))


async def _own_booking(request: Request) -> tuple[Services, str, str, Channel]:
    """(services, user id, booking id, its route's channel) for a booking path."""
    svc = _svc(request)
    user = svc.auth.user(request.headers.get("authorization"))
    booking_id = request.path_params["booking_id"]
    try:
        ch = await svc.gateway.channel(route_of_booking(booking_id))
    except Problem as p:
        if p.type != "not-found":
            raise
        raise Problem("not-found", f"There is no booking {booking_id} for you.") from None
    return svc, user.id, booking_id, ch


async def _booking_command(request: Request, make: type[GetBooking | Confirm | Cancel]) -> Response:
    svc, user, booking_id, ch = await _own_booking(request)
    return _answer(ch, await svc.gateway.call(ch, make(booking_id, user)))


@endpoint("get_booking")
async def get_booking(request: Request) -> Response:
    return await _booking_command(request, GetBooking)


@endpoint("confirm")
async def confirm(request: Request) -> Response:
    return await _booking_command(request, Confirm)


@endpoint("cancel")
async def cancel(request: Request) -> Response:
    return await _booking_command(request, Cancel)


@endpoint("change")
async def change(request: Request) -> Response:
    svc, user, booking_id, ch = await _own_booking(request)
    body = await read_json(request, schemas.change_in)
    _trip(ch, body.from_, body.to, body.klass)
    cmd = Change(booking_id, user, body.from_, body.to, body.klass)
    return _answer(ch, await svc.gateway.call(ch, cmd))


@endpoint("route_bookings")
async def route_bookings(request: Request) -> Response:
    svc = _svc(request)
    svc.auth.admin(request.headers.get("authorization"))
    ch = await svc.gateway.channel(request.path_params["route_id"])
    res = await svc.gateway.call(ch, ListBookings())
    if not res.ok:
        assert res.error is not None
        return from_domain(res.error)
    records = res.records or []
    return json_response({"bookings": [ch.view.booking(r, admin=True) for r in records]})


# ---- operations -----------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = await _svc(request).gateway.ready()
    runtime: Runtime | None = request.app.state.runtime
    problem = None if runtime is None else runtime.redis_problem()
    if problem is not None:
        # the supervisor knows more than a failed PING: why, and what it does about it
        checks["redis"] = f"failing: {problem}"
    ok = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
    )


async def metrics_endpoint(request: Request) -> Response:
    metrics.QUEUE_DEPTH.set(_svc(request).gateway.queue_depth())
    return Response(generate_latest(metrics.REGISTRY), media_type="text/plain; version=0.0.4")


async def openapi_endpoint(request: Request) -> Response:
    return Response(openapi.document(), media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # RFC 9110 §15.5.6: a 405 must carry Allow. Starlette's own names only the first
        # route matching the path, and some paths are served by two routes (GET and POST)
        path = request.scope["path"]
        allow = {m for r in ROUTES if r.path_regex.match(path) for m in r.methods or ()}
        return problem_response(
            "method-not-allowed",
            f"{request.method} is not allowed here.",
            headers={"Allow": ", ".join(sorted(allow))},
        )
    if exc.status_code == 404:
        return problem_response("not-found", f"There is nothing at {request.url.path}.")
    return problem_response("bad-request", str(exc.detail))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path)
    return problem_response("internal", "Something went wrong on our side; it has been logged.")


ROUTES = [
    # the hot path first: Starlette tries routes in order, ~5 µs each
    Route("/v1/routes/{route_id}/bookings", book, methods=["POST"]),
    Route("/v1/routes/{route_id}/availability", availability, methods=["GET"]),
    Route("/v1/routes", create_route, methods=["POST"]),
    *reads.ROUTES,  # GET /v1/search, GET /v1/bookings, GET /v1/routes
    Route("/v1/routes/{route_id}", get_route, methods=["GET"]),
    Route("/v1/routes/{route_id}/bookings", route_bookings, methods=["GET"]),
    Route("/v1/bookings/{booking_id}", get_booking, methods=["GET"]),
    Route("/v1/bookings/{booking_id}", cancel, methods=["DELETE"]),
    Route("/v1/bookings/{booking_id}/confirm", confirm, methods=["POST"]),
    Route("/v1/bookings/{booking_id}/change", change, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", openapi_endpoint, methods=["GET"]),
    *console.ROUTES,  # the web console: pages, its static files, seat map, admin JSON
]


_SHUTDOWN_STEP_SECONDS = 5.0


async def _bounded(step: Awaitable[object], what: str) -> None:
    try:
        async with asyncio.timeout(_SHUTDOWN_STEP_SECONDS):
            await step
    except TimeoutError:
        log.warning("shutdown step timed out", step=what, seconds=_SHUTDOWN_STEP_SECONDS)


def redis_client(url: str) -> aredis.Redis:
    """The front end's Redis client: one blocking pool, closed with the client."""
    # a blocking pool: past max_connections a request waits for a free connection
    # (a rush on GET /v1/routes, say) where the default pool fails it with a 500
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=_REDIS_CONNECTIONS, timeout=5, socket_timeout=10
    )
    return aredis.Redis.from_pool(pool)


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The app; with no runtime given, the lifespan starts (and stops) its own."""
    settings = settings.with_secret()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime
        own = rt is None
        if rt is None:
            rt = Runtime(settings)
            rt.start()
        app.state.runtime = rt
        client = redis_client(rt.redis_url)
        try:
            if settings.redis_url and not rt.preflighted:
                warning = await check_persistence(client, settings.allow_volatile)
                if warning:
                    log.warning("redis durability", detail=warning)
            config = ActorConfig(
                redis_url=rt.redis_url,
                hold_seconds=settings.hold_seconds,
                user_cap=settings.user_cap,
                snapshot_every=settings.snapshot_every,
                idle_seconds=settings.idle_seconds,
                plane_secret=settings.cluster_secret,
            )
            gateway = Gateway(settings, client, Directory(config))
            auth = Authenticator(settings.jwt_secret)
            app.state.services = Services(settings, auth, gateway, client, OrderedDict())
            indexed = await routes_store.ensure_indexed(client)
            if indexed:
                log.info("route indexes backfilled", routes=indexed)
            search = Search(client, rt.redis_url, gateway, settings.availability_refresh)
            app.state.reads = reads.Reads(auth, gateway, search, UserIndex(client))
            keeper = asyncio.create_task(gateway.keep_holds())
            sampler = console.start(app)
            log.info("ticketd ready", host=settings.host, port=settings.port)
            try:
                yield
            finally:
                keeper.cancel()
                sampler.cancel()
                await _bounded(asyncio.wait({keeper, sampler}), "hold keeper stop")
                gateway.close_links()
        finally:
            # shutdown must end: a stuck step is logged and skipped, never waited out
            await _bounded(client.aclose(), "redis client close")
            if own:
                rt.stop()

    return Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[RequestContext.middleware()],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )

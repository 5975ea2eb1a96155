"""A small in-memory ticketd with switchable faults, for testing loadgen's audit.

Modes:
- honest: sells each seat segment once and reports every booking.
- double-sell: never marks a seat taken, so later bookings get seats already sold.
- lose: leaves every third booking out of the admin list.
- phantom: adds a booking nobody asked for to the admin list.
- slow: applies every fourth booking, then waits SLOW_S before answering (clients time out).

Run it with `with FakeTicketd(mode, secret) as url:`; uvicorn serves it on 127.0.0.1 on a free
port in a background thread.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODES = ("honest", "double-sell", "lose", "phantom", "slow")
SLOW_S = 1.0
Json = dict[str, Any]


class Problem(Exception):
    def __init__(self, status: int, slug: str, detail: str = "") -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail

    def response(self) -> Response:
        body = {"type": self.slug, "title": self.slug, "status": self.status, "detail": self.detail}
        return JSONResponse(body, self.status, media_type="application/problem+json")


@dataclass
class RouteState:
    definition: Json
    stations: list[str]
    seats: dict[str, list[list[Any]]]  # class -> [coach, seat name, occupied-segment mask]
    bookings: list[str] = field(default_factory=list)
    waitlist: deque[str] = field(default_factory=deque)


@dataclass
class Store:
    mode: str
    secret: str
    routes: dict[str, RouteState] = field(default_factory=dict)
    bookings: dict[str, Json] = field(default_factory=dict)
    replies: dict[tuple[str, str], tuple[bytes, int, bytes]] = field(default_factory=dict)
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _user(request: Request, *, admin: bool = False) -> str:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise Problem(401, "unauthorized", "missing bearer token")
    try:
        claims = jwt.decode(header[7:], _store(request).secret, algorithms=["HS256"])
    except jwt.InvalidTokenError as exc:
        raise Problem(401, "unauthorized", str(exc)) from exc
    if admin and claims.get("role") != "admin":
        raise Problem(403, "forbidden", "admin only")
    return str(claims["sub"])


def _route(store: Store, route_id: str) -> RouteState:
    route = store.routes.get(route_id)
    if route is None:
        raise Problem(404, "not-found", f"no route {route_id}")
    return route


def _mask(route: RouteState, origin: str, destination: str) -> int:
    if origin not in route.stations or destination not in route.stations:
        raise Problem(422, "validation", "unknown station")
    i, j = route.stations.index(origin), route.stations.index(destination)
    if i >= j:
        raise Problem(422, "validation", "from must come before to")
    return ((1 << (j - i)) - 1) << i


def _public(booking: Json) -> Json:
    return {k: v for k, v in booking.items() if k not in ("user", "passengers", "mask")}


def _admin(booking: Json) -> Json:
    return {k: v for k, v in booking.items() if k != "mask"}


def _allocate(store: Store, route: RouteState, booking: Json) -> bool:
    free = [s for s in route.seats[booking["class"]] if s[2] & booking["mask"] == 0]
    count = len(booking["passengers"])
    if len(free) < count:
        return False
    booking["seats"] = [
        {"coach": seat[0], "seat": seat[1], "passenger": k} for k, seat in enumerate(free[:count])
    ]
    if store.mode != "double-sell":
        for seat in free[:count]:
            seat[2] |= booking["mask"]
    booking["status"] = "held"
    return True


def _release(route: RouteState, booking: Json) -> None:
    taken = {(s["coach"], s["seat"]) for s in booking["seats"]}
    for seat in route.seats[booking["class"]]:
        if (seat[0], seat[1]) in taken:
            seat[2] &= ~booking["mask"]


async def create_route(request: Request) -> Response:
    _user(request, admin=True)
    store, body = _store(request), await request.json()
    route_id = f"{body['train']}-{body['date'].replace('-', '')}"
    definition = {**body, "route_id": route_id}
    existing = store.routes.get(route_id)
    if existing is not None:
        if existing.definition == definition:
            return JSONResponse(definition, 200)
        raise Problem(409, "conflict", f"{route_id} exists with another definition")
    seats: dict[str, list[list[Any]]] = {}
    for coach in body["coaches"]:
        for row in range(1, coach["rows"] + 1):
            for letter in coach["letters"]:
                seats.setdefault(coach["class"], []).append(
                    [coach["number"], f"{row:02d}{letter}", 0]
                )
    store.routes[route_id] = RouteState(definition, list(body["stations"]), seats)
    return JSONResponse(definition, 201)


async def get_route(request: Request) -> Response:
    return JSONResponse(_route(_store(request), request.path_params["route_id"]).definition)


async def availability(request: Request) -> Response:
    route_id = request.path_params["route_id"]
    route = _route(_store(request), route_id)
    origin, destination = request.query_params["from"], request.query_params["to"]
    mask = _mask(route, origin, destination)
    counts = {k: sum(1 for s in seats if s[2] & mask == 0) for k, seats in route.seats.items()}
    body = {"route_id": route_id, "from": origin, "to": destination, "availability": counts}
    return JSONResponse(body)


async def book(request: Request) -> Response:
    store, user = _store(request), _user(request)
    key = request.headers.get("idempotency-key")
    if not key:
        raise Problem(400, "validation", "Idempotency-Key is required")
    raw = await request.body()
    seen = store.replies.get((user, key))
    if seen is not None:
        if seen[0] != raw:
            raise Problem(422, "idempotency-mismatch", "key reused with another body")
        return Response(seen[2], seen[1], media_type="application/json")
    route_id = request.path_params["route_id"]
    route, body = _route(store, route_id), json.loads(raw)
    if body["class"] not in route.seats or not 1 <= len(body["passengers"]) <= 5:
        raise Problem(422, "validation", "bad class or passenger count")
    number = next(store.serial)
    booking: Json = {
        "booking_id": f"B{number:07d}",
        "route_id": route_id,
        "status": "waitlisted",
        "from": body["from"],
        "to": body["to"],
        "class": body["class"],
        "seats": [],
        "hold_expires_at": "2099-01-01T00:00:00Z",
        "user": user,
        "passengers": body["passengers"],
        "mask": _mask(route, body["from"], body["to"]),
    }
    if _allocate(store, route, booking):
        status = 201
    elif body.get("waitlist"):
        route.waitlist.append(booking["booking_id"])
        status = 202
    else:
        raise Problem(409, "sold-out", f"no {body['class']} seats {body['from']} → {body['to']}")
    store.bookings[booking["booking_id"]] = booking
    route.bookings.append(booking["booking_id"])
    reply = json.dumps(_public(booking)).encode()
    store.replies[(user, key)] = (raw, status, reply)
    if store.mode == "slow" and number % 4 == 0:
        await asyncio.sleep(SLOW_S)  # applied, but the answer comes too late
    return Response(reply, status, media_type="application/json")


def _own(request: Request) -> tuple[Store, Json]:
    store, user = _store(request), _user(request)
    booking = store.bookings.get(request.path_params["booking_id"])
    if booking is None or booking["user"] != user:
        raise Problem(404, "not-found", "no such booking")
    return store, booking


async def get_booking(request: Request) -> Response:
    return JSONResponse(_public(_own(request)[1]))


async def confirm(request: Request) -> Response:
    _, booking = _own(request)
    if booking["status"] != "held":
        raise Problem(409, "invalid-state", f"booking is {booking['status']}")
    booking["status"] = "confirmed"
    return JSONResponse(_public(booking))


async def cancel(request: Request) -> Response:
    store, booking = _own(request)
    route = store.routes[booking["route_id"]]
    if booking["status"] in ("held", "confirmed"):
        _release(route, booking)
    elif booking["status"] == "waitlisted":
        route.waitlist.remove(booking["booking_id"])
    else:
        raise Problem(409, "invalid-state", f"booking is {booking['status']}")
    booking["status"] = "cancelled"
    for waiting in list(route.waitlist):  # FIFO promotion of whoever now fits
        if _allocate(store, route, store.bookings[waiting]):
            route.waitlist.remove(waiting)
    return JSONResponse(_public(booking))


async def route_bookings(request: Request) -> Response:
    _user(request, admin=True)
    store = _store(request)
    route_id = request.path_params["route_id"]
    ids = _route(store, route_id).bookings
    if store.mode == "lose":
        ids = [b for k, b in enumerate(ids) if k % 3 != 1]
    listed = [_admin(store.bookings[b]) for b in ids]
    if store.mode == "phantom":
        seat = {"coach": "01", "seat": "01A", "passenger": 0}
        stations = store.routes[route_id].stations
        listed.append(
            {
                "booking_id": f"B-phantom-{route_id}",
                "route_id": route_id,
                "status": "expired",
                "from": stations[0],
                "to": stations[-1],
                "class": "business",
                "seats": [seat],
                "user": "nobody",
                "passengers": [{"name": "Nobody", "id": "999999999999999999"}],
            }
        )
    return JSONResponse({"bookings": listed})


def _guard(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            response: Response = await handler(request)
            return response
        except Problem as problem:
            return problem.response()

    return endpoint


def app(mode: str, secret: str) -> Starlette:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.store = Store(mode, secret)
        yield

    routes = [
        Route("/v1/routes", _guard(create_route), methods=["POST"]),
        Route("/v1/routes/{route_id}", _guard(get_route), methods=["GET"]),
        Route("/v1/routes/{route_id}/availability", _guard(availability), methods=["GET"]),
        Route("/v1/routes/{route_id}/bookings", _guard(book), methods=["POST"]),
        Route("/v1/routes/{route_id}/bookings", _guard(route_bookings), methods=["GET"]),
        Route("/v1/bookings/{booking_id}", _guard(get_booking), methods=["GET"]),
        Route("/v1/bookings/{booking_id}", _guard(cancel), methods=["DELETE"]),
        Route("/v1/bookings/{booking_id}/confirm", _guard(confirm), methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class FakeTicketd:
    """Serves `app(mode, secret)` with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, mode: str, secret: str) -> None:
        config = uvicorn.Config(
            app(mode, secret),
            lifespan="on",
            loop="asyncio",
            ws="none",
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, name=f"fake-ticketd-{mode}")

    def _serve(self) -> None:
        assert self._socket is not None
        self._server.run(sockets=[self._socket])

    def __enter__(self) -> str:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.__exit__(None, None, None)
                raise RuntimeError("fake ticketd did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()

"""Baseline for comparison only: a "classic Python seckill" booking service.

Starlette (uvicorn with --workers processes, uvloop + httptools, like ticketd)
and one Redis Lua script per request, no actors and no batching in Python. The
Redis server is a private one with the same durability as ticketd's
(EmbeddedRedis: AOF, appendfsync always), started once by the parent process
and shared by its workers. Each request: verify the bearer JWT (the same cached
verifier as ticketd), require an Idempotency-Key, decode the body strictly
(msgspec), validate the trip, then EVALSHA one script that atomically
replays a known key, enforces the per-user cap and the passenger's one
booking per segment, decrements the per-(route, class, segment) stock and
records the order. Seats come from the stock counter, which is exact for the
one-segment trips the benchmark sends (a multi-segment seat map is what
ticketd's actors add).

Not part of ticketd: it lives in bench/ only so bench/throughput.py can
compare against it.

    .venv/bin/python bench/apps/lua_seckill.py --port 8102 --data-dir /tmp/x \
        --routes routes.json --workers 2   # env BENCH_JWT_SECRET: the HS256 key
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import msgspec
import redis.asyncio as aredis
import uvicorn
from msgspec import Meta
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.domain.route import RouteDef
from actors.storage.redis_server import EmbeddedRedis
from server.api.auth import Authenticator
from server.api.problems import Problem, problem_response

HOLD_SECONDS = 600.0

#: Redis connections of one worker (as many as one ticketd front end keeps)
REDIS_CONNECTIONS = 64

# KEYS: idem, live, order, stock[seg_1..seg_k], pax[seg_1..seg_k]
# ARGV: k, booking_id, fingerprint, user, cap, order fields as JSON
_BOOK = """
local k = tonumber(ARGV[1])
local known = redis.call('HMGET', KEYS[1], 'booking_id', 'fingerprint')
if known[1] then
  if known[2] ~= ARGV[3] then return {-1} end
  return {1, known[1], redis.call('HGET', 'order:' .. known[1], 'doc')}
end
local live = tonumber(redis.call('GET', KEYS[2]) or '0')
if live + 1 > tonumber(ARGV[5]) then return {-2} end
for s = 1, k do
  if redis.call('EXISTS', KEYS[3 + k + s]) == 1 then return {-3} end
  if tonumber(redis.call('GET', KEYS[3 + s]) or '0') < 1 then return {-4} end
end
local seat = 0
for s = 1, k do
  local left = redis.call('DECR', KEYS[3 + s])
  if s == 1 then seat = left end
  redis.call('SET', KEYS[3 + k + s], ARGV[2])
end
redis.call('INCR', KEYS[2])
local doc = string.gsub(ARGV[6], '"seat_index":%-1', '"seat_index":' .. seat)
redis.call('HSET', KEYS[3], 'doc', doc, 'user', ARGV[4], 'status', 'held')
redis.call('HSET', KEYS[1], 'booking_id', ARGV[2], 'fingerprint', ARGV[3])
return {0, ARGV[2], doc}
"""

_ERRORS = {
    -1: ("idempotency-mismatch", "Idempotency-Key reused with a different request."),
    -2: ("too-many-bookings", "You hold the most seats allowed on this route."),
    -3: ("passenger-conflict", "A passenger already travels on this trip."),
    -4: ("sold-out", "No seat is left for this trip."),
}

Name = Annotated[str, Meta(min_length=1, max_length=64)]
PassengerId = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")]


class PassengerIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    id: PassengerId


class BookingIn(msgspec.Struct, forbid_unknown_fields=True):
    from_: str = msgspec.field(name="from")
    to: str = ""
    klass: str = msgspec.field(name="class", default="")
    passengers: Annotated[list[PassengerIn], Meta(min_length=1, max_length=1)] = []


class Order(msgspec.Struct):
    """What the script stores and answers (seat_index filled in by the script)."""

    booking_id: str
    route_id: str
    user: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    klass: str = msgspec.field(name="class", default="")
    passenger: PassengerIn | None = None
    seat_index: int = -1
    created_at: float = 0.0
    hold_expires_at: float = 0.0


_booking_in = msgspec.json.Decoder(BookingIn)
_order = msgspec.json.Decoder(Order)


class Routes:
    def __init__(self, defs: list[dict[str, Any]]) -> None:
        self.routes = {r.route_id: r for r in (RouteDef.from_dict(d) for d in defs)}
        self.index = {
            rid: {s: i for i, s in enumerate(r.stations)} for rid, r in self.routes.items()
        }
        # per route and class: seat names in stock order (stock counts down from the total)
        self.seats: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for rid, r in self.routes.items():
            for seat in r.seats():
                self.seats.setdefault((rid, seat.klass), []).append((seat.coach, seat.name))


def _iso(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_app(redis_url: str, secret: str, routes: Routes, user_cap: int) -> Starlette:
    auth = Authenticator(secret)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # as ticketd's front end: a blocking pool, where past max_connections a request
        # waits for a connection (the default pool fails it with a 500 at 100 in flight)
        pool = aredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=REDIS_CONNECTIONS, timeout=5, socket_timeout=10
        )
        client = aredis.Redis.from_pool(pool)
        state["client"] = client
        state["book"] = client.register_script(_BOOK)
        async with client.pipeline(transaction=False) as pipe:
            for (rid, klass), seats in routes.seats.items():
                for seg in range(len(routes.routes[rid].stations) - 1):
                    pipe.set(f"stock:{rid}:{klass}:{seg}", len(seats), nx=True)
            await pipe.execute()
        try:
            yield
        finally:
            await client.aclose()

    async def book(request: Request) -> Response:
        try:
            user = auth.user(request.headers.get("authorization"))
            key = request.headers.get("idempotency-key")
            if not key or len(key) > 128:
                raise Problem("missing-idempotency-key", "Send an Idempotency-Key header.")
            rid = request.path_params["route_id"]
            route = routes.routes.get(rid)
            if route is None:
                raise Problem("not-found", f"There is no route {rid}.")
            raw = await request.body()
            try:
                body = _booking_in.decode(raw)
            except msgspec.ValidationError as exc:
                raise Problem("validation", f"The request body is invalid: {exc}.") from None
            except msgspec.DecodeError as exc:
                raise Problem("malformed-json", f"Not valid JSON ({exc}).") from None
            index = routes.index[rid]
            i, j = index.get(body.from_), index.get(body.to)
            if i is None or j is None or j <= i:
                raise Problem("bad-trip", "Give two stations of the route in travel order.")
            seats = routes.seats.get((rid, body.klass))
            if seats is None:
                raise Problem("unknown-class", f"Route {rid} has no class {body.klass!r}.")
            fingerprint = hashlib.sha256(rid.encode() + raw).hexdigest()[:32]
            pax = body.passengers[0]
            now = time.time()
            booking_id = f"{rid}-{secrets.token_hex(12)}"
            order = Order(
                booking_id, rid, user.id, body.from_, body.to, body.klass, pax, -1, now,
                now + HOLD_SECONDS,
            )  # fmt: skip
            segs = range(i, j)
            keys = [
                f"idem:{rid}:{user.id}:{key}",
                f"live:{rid}:{user.id}",
                f"order:{booking_id}",
                *(f"stock:{rid}:{body.klass}:{s}" for s in segs),
                *(f"pax:{rid}:{s}:{pax.id}" for s in segs),
            ]
            args = [j - i, booking_id, fingerprint, user.id, user_cap, msgspec.json.encode(order)]
            res = await state["book"](keys=keys, args=args)
            code = int(res[0])
            if code < 0:
                raise Problem(*_ERRORS[code])
            stored = _order.decode(res[2])
            coach, seat = seats[len(seats) - 1 - stored.seat_index]
            view = {
                "booking_id": stored.booking_id,
                "route_id": rid,
                "status": "held",
                "from": stored.from_,
                "to": stored.to,
                "class": stored.klass,
                "seats": [{"coach": coach, "seat": seat, "passenger": 0}],
                "hold_expires_at": _iso(stored.hold_expires_at),
                "created_at": _iso(stored.created_at),
            }
            return Response(
                msgspec.json.encode(view), status_code=201, media_type="application/json"
            )
        except Problem as p:
            return problem_response(p.type, p.detail, p.extra)

    async def readyz(request: Request) -> Response:
        await state["client"].ping()
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/v1/routes/{route_id}/bookings", book, methods=["POST"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def app_from_env() -> Starlette:
    """The app one uvicorn worker serves, configured by the parent through the environment
    (a worker is a fresh interpreter: it sees no argument the parent parsed)."""
    routes = Routes(json.loads(Path(os.environ["BENCH_LUA_ROUTES"]).read_text()))
    return create_app(
        os.environ["BENCH_REDIS_URL"],
        os.environ["BENCH_JWT_SECRET"],
        routes,
        int(os.environ["BENCH_USER_CAP"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True, help="where the private Redis keeps its AOF")
    parser.add_argument("--routes", required=True, help="JSON file: list of route definitions")
    parser.add_argument("--user-cap", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    if not os.environ.get("BENCH_JWT_SECRET"):  # here, not once in every worker
        parser.error("set BENCH_JWT_SECRET, the HS256 key of the bearer tokens")
    # once, on the main thread of the parent, before uvicorn: one Redis for all workers,
    # and EmbeddedRedis ties its parent-death signal to this thread
    server = EmbeddedRedis(args.data_dir)
    url = server.start()
    os.environ.update(
        BENCH_REDIS_URL=url,
        BENCH_LUA_ROUTES=str(Path(args.routes).resolve()),
        BENCH_USER_CAP=str(args.user_cap),
    )
    try:
        # workers import the app by name: this directory is on their sys.path, as on ours
        uvicorn.run(
            "lua_seckill:app_from_env",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()

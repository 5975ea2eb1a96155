"""The seat map of a trip: `GET /v1/routes/{route_id}/seats?from=A&to=B`.

Served like availability: per route, the front end keeps the actor's last seat map
(per seat a segment bitmask, plane op OP_SEATS) for at most the availability
refresh interval, one read in flight per route however many viewers ask, and
works out free or taken for the asked trip itself. A write through this front end
makes the next read fetch again (the channel's version moved), so a buyer sees
their own booking at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from actors.domain.route import RouteDef, Seat, resolve_trip, trip_mask
from actors.domain.views import SeatMap
from actors.plane import protocol
from server.api.common import endpoint
from server.api.problems import Problem
from server.console import payloads as out
from server.dispatch.channel import Channel
from server.dispatch.errors import DispatchError
from server.dispatch.gateway import Gateway
from server.flight import SingleFlight

_seat_map = msgspec.msgpack.Decoder(SeatMap)
_encode = msgspec.json.Encoder()
#: trip answers remembered per route and seat-map version
_MAX_TRIPS = 256


@dataclass(slots=True)
class Fetched:
    """One route's seat map as this front end last read it, with its trip answers."""

    seats: SeatMap
    at: float
    trips: dict[tuple[int, int], bytes]


class SeatMaps:
    """Per-route cache of the actors' seat maps."""

    def __init__(self, gateway: Gateway, refresh: float) -> None:
        self.gateway = gateway
        self.refresh = refresh
        self._maps: dict[str, Fetched] = {}
        self._reading: SingleFlight[str, Fetched] = SingleFlight()

    def fresh(self, ch: Channel) -> Fetched | None:
        """The cached map if it is recent and no newer write went through this front end."""
        got = self._maps.get(ch.route.route_id)
        if got is None or time.monotonic() - got.at > self.refresh:
            return None
        return got if ch.version <= got.seats.version else None

    async def get(self, ch: Channel) -> Fetched:
        """The route's seat map, read from its actor when the cache is stale."""
        got = self.fresh(ch)
        if got is not None:
            return got
        return await self._reading.run(ch.route.route_id, lambda: self._read(ch))

    async def _read(self, ch: Channel) -> Fetched:
        route_id = ch.route.route_id
        try:
            raw = await self.gateway.read(ch, protocol.OP_SEATS)
        except DispatchError:
            old = self._maps.get(route_id)
            if old is not None:
                return old  # the last known map rather than a failed page
            raise
        got = Fetched(_seat_map.decode(raw), time.monotonic(), {})
        self._maps[route_id] = got
        return got


#: per coach: number, class, rows, letters, and its seats as (index, name)
Layout = list[tuple[str, str, int, str, list[tuple[int, str]]]]
_LAYOUTS: dict[str, Layout] = {}


def _layout(route: RouteDef) -> Layout:
    # routes never change once created: one layout per route, made on its first seat map
    layout = _LAYOUTS.get(route.route_id)
    if layout is None:
        if len(_LAYOUTS) > 10_000:
            _LAYOUTS.clear()
        seats: list[Seat] = route.seats()
        layout, at = [], 0
        for c in route.coaches:
            size = c.rows * len(c.letters)
            mine = [(s.index, s.name) for s in seats[at : at + size]]
            layout.append((c.number, c.klass, c.rows, c.letters, mine))
            at += size
        _LAYOUTS[route.route_id] = layout
    return layout


def trip_body(route: RouteDef, got: Fetched, from_: str, to: str, i: int, j: int) -> bytes:
    """The seats answer for trip (i, j), encoded once per seat-map version."""
    body = got.trips.get((i, j))
    if body is not None:
        return body
    want, bits = trip_mask(i, j), got.seats.bits
    coaches = []
    free: dict[str, int] = {}
    for number, klass, rows, letters, mine in _layout(route):
        taken = [name for index, name in mine if bits[index] & want]
        coaches.append(out.CoachSeats(number, klass, rows, letters, taken))
        free[klass] = free.get(klass, 0) + len(mine) - len(taken)
    answer = out.SeatsOut(route.route_id, from_, to, coaches, free, got.seats.version)
    body = _encode.encode(answer)
    if len(got.trips) >= _MAX_TRIPS:
        got.trips.clear()
    got.trips[(i, j)] = body
    return body


@endpoint("seats")
async def seats_endpoint(request: Request) -> Response:
    svc = request.app.state.services
    maps: SeatMaps = request.app.state.console.seat_maps
    ch = await svc.gateway.channel(request.path_params["route_id"])
    allowed = ("from", "to")
    for name in request.query_params:
        if name not in allowed:
            raise Problem("validation", f"Unknown query parameter {name!r}; give from and to.")
    from_, to = request.query_params.get("from"), request.query_params.get("to")
    if not from_ or not to:
        raise Problem(
            "validation", "Give the trip as query parameters ?from=<station>&to=<station>."
        )
    route = ch.route
    i, j = resolve_trip(route.route_id, ch.station_index, ch.classes, from_, to, None)
    got = await maps.get(ch)
    return Response(trip_body(route, got, from_, to, i, j), media_type="application/json")

"""What the route actors answer, rendered as the HTTP contract shows it.

An actor answers with plain records (seat indexes, epoch seconds: actors/domain/views.py)
because it is the one serial step of its route; rendering is the front ends' work, since
they scale out. A booking is rendered into the same msgspec types that document it in
/openapi.json (server/api/schemas.py), so the two cannot differ.
"""

from __future__ import annotations

import datetime as dt

from actors.domain.route import RouteDef, pair_index
from actors.domain.views import Record
from server.api.schemas import AdminBookingOut, BookingOut, PassengerIn, SeatOut

_ISO_SECONDS: dict[int, str] = {}


def iso(ts: float | None) -> str | None:
    """UTC ISO-8601 with milliseconds, or None."""
    if ts is None:
        return None
    # every booking answer formats two times of a handful of distinct seconds: format each
    # second once (datetime formatting is ~10 µs a call, a large share of an answer)
    whole = int(ts // 1)
    # as datetime does: round to the microsecond, then cut to milliseconds
    micros = round((ts - whole) * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    head = _ISO_SECONDS.get(whole)
    if head is None:
        if len(_ISO_SECONDS) > 4096:
            _ISO_SECONDS.clear()
        moment = dt.datetime.fromtimestamp(whole, dt.UTC)
        head = _ISO_SECONDS[whole] = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{micros // 1000:03d}Z"


class RouteView:
    """Renders the records of one route (its seats' names are worked out once)."""

    def __init__(self, route: RouteDef) -> None:
        self.route = route
        self.n = len(route.stations)
        self._seat = [(s.coach, s.name) for s in route.seats()]

    def booking(self, rec: Record, admin: bool = False) -> BookingOut:
        """The booking as the contract shows it; admins also see user and passengers."""
        stations, seat = self.route.stations, self._seat
        seats = [SeatOut(seat[s][0], seat[s][1], n) for n, s in enumerate(rec.seats)]
        args = (
            rec.booking_id, self.route.route_id, rec.status, stations[rec.from_idx],
            stations[rec.to_idx], rec.klass, seats, iso(rec.hold_expires_at),
            iso(rec.created_at),
        )  # fmt: skip
        if not admin:
            return BookingOut(*args)
        passengers = [PassengerIn(p.name, p.id) for p in rec.passengers]
        return AdminBookingOut(*args, user=rec.user, passengers=passengers)

    def trip(self, matrix: dict[str, list[int]], i: int, j: int) -> dict[str, int]:
        """Per-class free seats for trip (i, j) out of an availability matrix."""
        p = pair_index(i, j, self.n)
        return {k: row[p] for k, row in matrix.items()}


_views: dict[str, RouteView] = {}


def view(route: RouteDef) -> RouteView:
    """The route's renderer (routes never change once created: made once per route)."""
    found = _views.get(route.route_id)
    if found is None or found.route is not route:
        found = _views[route.route_id] = RouteView(route)
    return found

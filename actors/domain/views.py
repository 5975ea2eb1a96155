"""Compact booking records (what the actor answers) and their client rendering.

The route actor is the one serial point of a route, so it answers with
compact records (seat indexes, epoch seconds); front ends, which scale out,
turn them into the contract's JSON with `RouteView`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

from actors.domain.messages import Held, Passenger
from actors.domain.route import RouteDef, pair_index
from actors.domain.state import Booking, RouteState


class Record(msgspec.Struct, array_like=True, frozen=True):
    """One booking as the actor reports it."""

    booking_id: str
    status: str
    from_idx: int
    to_idx: int
    klass: str
    seats: list[int]
    hold_expires_at: float | None
    created_at: float
    user: str
    passengers: list[Passenger]


class Result(msgspec.Struct, array_like=True, frozen=True, omit_defaults=True):
    """One command's answer: kind is created | waitlisted | ok, or an error dict."""

    ok: bool
    kind: str = "ok"
    record: Record | None = None
    records: list[Record] | None = None
    error: dict[str, Any] | None = None


class Reply(msgspec.Struct, array_like=True):
    """An actor's answer to one request: one result per command, plus availability.

    `matrix` holds per class the free seats of every station pair (by pair_index). Over
    the data plane it carries only the classes that changed since the last answer on
    that connection; the receiver keeps the rest.
    """

    results: list[Result]
    version: int
    matrix: dict[str, list[int]]


class SeatMap(msgspec.Struct, array_like=True):
    """A route's seat map as Redis holds it: per seat (by index) its occupied segments as
    a bitmask, and the seats of live bookings by status (for the operator console)."""

    version: int
    bits: list[int]
    held: int
    sold: int
    #: passengers waiting on the waitlist
    waitlisted: int


def seat_map(state: RouteState, version: int) -> SeatMap:
    """The seat map and booking counts of a state (O(seats + bookings))."""
    held = sold = 0
    for b in state.bookings.values():
        if b.status == "held":
            held += len(b.seats)
        elif b.status == "confirmed":
            sold += len(b.seats)
    waiting = sum(len(state.bookings[bid].passengers) for bid in state.waitlist)
    return SeatMap(version, list(state.inv.bits), held, sold, waiting)


def record(b: Booking) -> Record:
    """The booking as it stands now."""
    expires = b.hold_expires_at if b.status == "held" else None
    return Record(
        b.booking_id, b.status, b.from_idx, b.to_idx, b.klass, b.seats, expires,
        b.created_at, b.user, b.passengers,
    )  # fmt: skip


def origin_record(b: Booking) -> tuple[str, Record]:
    """The first answer a booking request got, for idempotent repeats."""
    o = b.origin
    if isinstance(o, Held):
        rec = Record(o.booking_id, "held", o.from_idx, o.to_idx, o.klass, list(o.seats),
                     o.expires_at, o.at, o.user, list(o.passengers))  # fmt: skip
        return "created", rec
    rec = Record(o.booking_id, "waitlisted", o.from_idx, o.to_idx, o.klass, [], None, o.at,
                 o.user, list(o.passengers))  # fmt: skip
    return "waitlisted", rec


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
    """Renders records of one route as the HTTP contract shows them."""

    def __init__(self, route: RouteDef) -> None:
        self.route = route
        self.n = len(route.stations)
        self._seat = [(s.coach, s.name) for s in route.seats()]

    def booking(self, rec: Record, admin: bool = False) -> dict[str, Any]:
        """The booking as JSON; admins also see user and passengers."""
        stations = self.route.stations
        seat = self._seat
        view: dict[str, Any] = {
            "booking_id": rec.booking_id,
            "route_id": self.route.route_id,
            "status": rec.status,
            "from": stations[rec.from_idx],
            "to": stations[rec.to_idx],
            "class": rec.klass,
            "seats": [
                {"coach": seat[s][0], "seat": seat[s][1], "passenger": n}
                for n, s in enumerate(rec.seats)
            ],
            "hold_expires_at": iso(rec.hold_expires_at),
            "created_at": iso(rec.created_at),
        }
        if admin:
            view["user"] = rec.user
            view["passengers"] = [{"name": p.name, "id": p.id} for p in rec.passengers]
        return view

    def trip(self, matrix: dict[str, list[int]], i: int, j: int) -> dict[str, int]:
        """Per-class free seats for trip (i, j) out of an availability matrix."""
        p = pair_index(i, j, self.n)
        return {k: row[p] for k, row in matrix.items()}


def availability_matrix(state: RouteState) -> dict[str, list[int]]:
    """Per class, free seats for every station pair (flattened by pair_index)."""
    return {k: state.inv.matrix(k) for k in state.inv.classes}

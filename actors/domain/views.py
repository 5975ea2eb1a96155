"""What the route actor answers, as plain data: compact booking records, results,
replies with availability, the seat map.

The route actor is the one serial point of a route, so it answers with compact records
(seat indexes, epoch seconds); front ends, which scale out, render them as the HTTP
contract's JSON (server/api/render.py).
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.domain.messages import Held, Passenger
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


def availability_matrix(state: RouteState) -> dict[str, list[int]]:
    """Per class, free seats for every station pair (flattened by pair_index)."""
    return {k: state.inv.matrix(k) for k in state.inv.classes}

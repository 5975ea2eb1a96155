"""A route's in-memory state and `apply(state, event)`, the only way it changes."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any

import msgspec

from actors.domain.inventory import Inventory
from actors.domain.messages import (
    Cancelled,
    Changed,
    Confirmed,
    Event,
    Expired,
    Held,
    Passenger,
    Served,
    Waitlisted,
)
from actors.domain.route import RouteDef, trip_mask

LIVE = frozenset({"held", "confirmed", "waitlisted"})


@dataclass(slots=True)
class Booking:
    booking_id: str
    user: str
    key: str
    fingerprint: str
    from_idx: int
    to_idx: int
    klass: str
    seats: list[int]
    passengers: list[Passenger]
    status: str
    created_at: float
    hold_expires_at: float | None
    letters: list[str]
    together: bool
    origin: Held | Waitlisted
    updated_at: float = 0.0

    @property
    def mask(self) -> int:
        return trip_mask(self.from_idx, self.to_idx)


@dataclass(slots=True)
class RouteState:
    """Seat map plus bookings, indexes for the rules, and the waitlist."""

    route: RouteDef
    inv: Inventory
    station_index: dict[str, int]
    bookings: dict[str, Booking] = field(default_factory=dict)
    idem: dict[tuple[str, str], str] = field(default_factory=dict)
    by_passenger: dict[str, dict[str, None]] = field(default_factory=dict)
    live_seats: dict[str, int] = field(default_factory=dict)
    waitlist: dict[str, None] = field(default_factory=dict)
    holds: list[tuple[float, str]] = field(default_factory=list)
    events_applied: int = 0

    @classmethod
    def empty(cls, route: RouteDef) -> RouteState:
        """A route with every seat free."""
        return cls(route, Inventory(route), {s: i for i, s in enumerate(route.stations)})


def apply(state: RouteState, event: Event) -> RouteState:
    """Apply one journalled fact; raises InventoryCorrupt if it contradicts the state."""
    state.events_applied += 1
    match event:
        case Held():
            b = _new_booking(event, "held", event.seats, event.expires_at)
            state.inv.occupy(b.seats, b.from_idx, b.to_idx)
            _add(state, b)
            heapq.heappush(state.holds, (event.expires_at, b.booking_id))
        case Waitlisted():
            b = _new_booking(event, "waitlisted", [], None)
            _add(state, b)
            state.waitlist[b.booking_id] = None
        case Served():
            b = state.bookings[event.booking_id]
            state.inv.occupy(event.seats, b.from_idx, b.to_idx)
            del state.waitlist[b.booking_id]
            b.seats, b.status, b.hold_expires_at = event.seats, "held", event.expires_at
            b.updated_at = event.at
            heapq.heappush(state.holds, (event.expires_at, b.booking_id))
        case Confirmed():
            b = state.bookings[event.booking_id]
            b.status, b.updated_at = "confirmed", event.at
        case Cancelled() | Expired():
            b = state.bookings[event.booking_id]
            if b.status == "waitlisted":
                del state.waitlist[b.booking_id]
            else:
                state.inv.release(b.seats, b.from_idx, b.to_idx)
            _drop_live(state, b)
            b.status = "cancelled" if isinstance(event, Cancelled) else "expired"
            b.updated_at = event.at
        case Changed():
            b = state.bookings[event.booking_id]
            state.inv.release(b.seats, b.from_idx, b.to_idx)
            state.inv.occupy(event.seats, event.from_idx, event.to_idx)
            b.from_idx, b.to_idx, b.klass = event.from_idx, event.to_idx, event.klass
            b.seats, b.updated_at = event.seats, event.at
    return state


def _new_booking(
    e: Held | Waitlisted, status: str, seats: list[int], expires: float | None
) -> Booking:
    return Booking(
        e.booking_id,
        e.user,
        e.key,
        e.fingerprint,
        e.from_idx,
        e.to_idx,
        e.klass,
        seats,
        e.passengers,  # events are immutable facts: share, never mutate
        status,
        e.at,
        expires,
        e.letters,
        e.together,
        e,
        e.at,
    )


def _add(state: RouteState, b: Booking) -> None:
    state.bookings[b.booking_id] = b
    state.idem[(b.user, b.key)] = b.booking_id
    for p in b.passengers:
        state.by_passenger.setdefault(p.id, {})[b.booking_id] = None
    state.live_seats[b.user] = state.live_seats.get(b.user, 0) + len(b.passengers)


def _drop_live(state: RouteState, b: Booking) -> None:
    for p in b.passengers:
        live = state.by_passenger[p.id]
        del live[b.booking_id]
        if not live:
            del state.by_passenger[p.id]
    state.live_seats[b.user] -= len(b.passengers)
    if not state.live_seats[b.user]:
        del state.live_seats[b.user]


# ---- snapshots -------------------------------------------------------------------


class _Row(msgspec.Struct, array_like=True):
    booking_id: str
    from_idx: int
    to_idx: int
    klass: str
    seats: list[int]
    status: str
    hold_expires_at: float | None
    updated_at: float
    origin: Held | Waitlisted


class _Snap(msgspec.Struct, array_like=True):
    route: dict[str, Any]
    events_applied: int
    bookings: list[_Row]
    waitlist: list[str]


_snap_decoder = msgspec.msgpack.Decoder(_Snap)
_enc = msgspec.msgpack.Encoder()


def to_snapshot(state: RouteState) -> bytes:
    """Serialize the state; seat bits are derived from the live bookings on load."""
    rows = [
        _Row(b.booking_id, b.from_idx, b.to_idx, b.klass, b.seats, b.status,
             b.hold_expires_at, b.updated_at, b.origin)
        for b in state.bookings.values()
    ]  # fmt: skip
    return _enc.encode(
        _Snap(state.route.to_dict(), state.events_applied, rows, list(state.waitlist))
    )


def from_snapshot(data: bytes) -> RouteState:
    """Rebuild a state (with all indexes) from `to_snapshot` output."""
    snap = _snap_decoder.decode(data)
    state = RouteState.empty(RouteDef.from_dict(snap.route))
    for row in snap.bookings:
        bid, i, j, klass, seats = row.booking_id, row.from_idx, row.to_idx, row.klass, row.seats
        status, expires, updated = row.status, row.hold_expires_at, row.updated_at
        b = _new_booking(row.origin, status, seats, expires)
        b.from_idx, b.to_idx, b.klass, b.updated_at = i, j, klass, updated
        state.bookings[bid] = b
        state.idem[(b.user, b.key)] = bid
        if status in LIVE:
            for p in b.passengers:
                state.by_passenger.setdefault(p.id, {})[bid] = None
            state.live_seats[b.user] = state.live_seats.get(b.user, 0) + len(b.passengers)
            if status != "waitlisted":
                state.inv.occupy(b.seats, i, j)
        if status == "held" and expires is not None:
            state.holds.append((expires, bid))
    heapq.heapify(state.holds)
    state.waitlist = dict.fromkeys(snap.waitlist)
    state.events_applied = snap.events_applied
    return state


def next_deadline(state: RouteState) -> float | None:
    """Earliest deadline of a live hold; drops stale heap entries on the way."""
    holds, bookings = state.holds, state.bookings
    while holds:
        deadline, bid = holds[0]
        b = bookings[bid]
        if b.status == "held" and b.hold_expires_at == deadline:
            return deadline
        heapq.heappop(holds)
    return None

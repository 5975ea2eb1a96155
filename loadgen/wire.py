"""The JSON shapes of the ticketd HTTP contract (docs/architecture.md) that loadgen sends and reads.

Replies are decoded leniently (fields loadgen does not use are ignored) because the audit must
read whatever the server says; requests are encoded strictly (optional fields left out when
unset) because the server rejects unknown fields.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

LIVE_STATUSES = frozenset({"held", "confirmed", "waitlisted"})
"""Statuses whose seats count as sold; `cancelled` and `expired` have returned theirs."""

T = TypeVar("T")


class Coach(msgspec.Struct, frozen=True, kw_only=True):
    number: str
    klass: str = msgspec.field(name="class")
    rows: int
    letters: str


class RouteDef(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A route definition; `route_id` is set by the server and absent from the create request."""

    train: str
    date: str
    stations: tuple[str, ...]
    coaches: tuple[Coach, ...]
    route_id: str | None = None

    def same_layout(self, other: RouteDef) -> bool:
        """Whether two definitions describe the same train, day, stations and coaches."""
        return (self.train, self.date, self.stations, self.coaches) == (
            other.train,
            other.date,
            other.stations,
            other.coaches,
        )


class Passenger(msgspec.Struct, frozen=True):
    name: str
    id: str


class Seat(msgspec.Struct, frozen=True):
    coach: str
    seat: str
    passenger: int


class BookingRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    klass: str = msgspec.field(name="class")
    passengers: tuple[Passenger, ...]
    seat_letters: tuple[str, ...] | None = None
    together: bool | None = None
    waitlist: bool | None = None


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    """A booking as the server shows it: a reply, or an admin-list item (+ user, passengers)."""

    booking_id: str
    route_id: str
    status: str
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    klass: str = msgspec.field(name="class")
    seats: tuple[Seat, ...] = ()
    user: str | None = None
    passengers: tuple[Passenger, ...] | None = None


class BookingList(msgspec.Struct, frozen=True):
    bookings: tuple[Booking, ...]


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    route_id: str
    origin: str = msgspec.field(name="from")
    destination: str = msgspec.field(name="to")
    availability: dict[str, int]


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An RFC 9457 problem document; only the parts loadgen shows or branches on."""

    type: str = "about:blank"
    title: str | None = None
    detail: str | None = None

    @property
    def slug(self) -> str:
        """The stable slug, whether the server sends `sold-out` or a URI ending in it."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]


def encode(value: msgspec.Struct) -> bytes:
    """JSON bytes for a request body."""
    return msgspec.json.encode(value)


def decode(body: bytes, kind: type[T]) -> T | None:
    """The reply body as `kind`, or None when it is not valid JSON of that shape."""
    try:
        return msgspec.json.decode(body, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None

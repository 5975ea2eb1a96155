"""Commands (requests to a route) and events (facts journalled by it), as plain data.

msgspec Structs encode to msgpack compactly and decode strictly, so one
format serves Ray arguments, the Redis journal and snapshots.
"""

from __future__ import annotations

import msgspec


class Passenger(msgspec.Struct, frozen=True, array_like=True):
    name: str
    id: str


# ---- commands --------------------------------------------------------------------


class Book(msgspec.Struct, tag="book", frozen=True):
    booking_id: str
    user: str
    key: str
    fingerprint: str
    from_: str
    to: str
    klass: str
    passengers: list[Passenger]
    seat_letters: list[str] = []
    together: bool = False
    waitlist: bool = False
    #: seat indexes the buyer picked on the seat map (one per passenger); empty: best fit
    seats: list[int] = []


class Confirm(msgspec.Struct, tag="confirm", frozen=True):
    booking_id: str
    user: str


class Cancel(msgspec.Struct, tag="cancel", frozen=True):
    booking_id: str
    user: str


class Change(msgspec.Struct, tag="change", frozen=True):
    booking_id: str
    user: str
    from_: str
    to: str
    klass: str


class GetBooking(msgspec.Struct, tag="get", frozen=True):
    booking_id: str
    user: str


class ListBookings(msgspec.Struct, tag="list", frozen=True):
    pass


class Sweep(msgspec.Struct, tag="sweep", frozen=True):
    """Expire every hold whose deadline has passed."""


Command = Book | Confirm | Cancel | Change | GetBooking | ListBookings | Sweep


# ---- events ----------------------------------------------------------------------


class Held(msgspec.Struct, tag="held", frozen=True, array_like=True):
    booking_id: str
    user: str
    key: str
    fingerprint: str
    from_idx: int
    to_idx: int
    klass: str
    seats: list[int]
    passengers: list[Passenger]
    at: float
    expires_at: float
    letters: list[str]
    together: bool


class Waitlisted(msgspec.Struct, tag="waitlisted", frozen=True, array_like=True):
    booking_id: str
    user: str
    key: str
    fingerprint: str
    from_idx: int
    to_idx: int
    klass: str
    passengers: list[Passenger]
    at: float
    letters: list[str]
    together: bool


class Served(msgspec.Struct, tag="served", frozen=True, array_like=True):
    """A waitlisted booking got its seats and a fresh hold."""

    booking_id: str
    seats: list[int]
    at: float
    expires_at: float


class Confirmed(msgspec.Struct, tag="confirmed", frozen=True, array_like=True):
    booking_id: str
    at: float


class Cancelled(msgspec.Struct, tag="cancelled", frozen=True, array_like=True):
    booking_id: str
    at: float


class Expired(msgspec.Struct, tag="expired", frozen=True, array_like=True):
    booking_id: str
    at: float


class Changed(msgspec.Struct, tag="changed", frozen=True, array_like=True):
    """Old seats released and new ones taken in one step."""

    booking_id: str
    from_idx: int
    to_idx: int
    klass: str
    seats: list[int]
    at: float


Event = Held | Waitlisted | Served | Confirmed | Cancelled | Expired | Changed

_event_encoder = msgspec.msgpack.Encoder()
_events_decoder = msgspec.msgpack.Decoder(list[Event])
_commands_decoder = msgspec.msgpack.Decoder(list[Command])


def encode(value: object) -> bytes:
    """msgpack-encode commands, events or results."""
    return _event_encoder.encode(value)


def decode_events(data: bytes) -> list[Event]:
    """Strictly decode a journalled list of events (raises on corruption)."""
    return _events_decoder.decode(data)


def decode_commands(data: bytes) -> list[Command]:
    """Strictly decode a batch of commands."""
    return _commands_decoder.decode(data)

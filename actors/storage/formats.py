"""What the route actors store for readers that wake no actor, and how readers decode it:
each format shared by a writer and a reader is defined here once.

- the route's availability after each batch (`keys.availability`), tagged with an
  `availability_version` that orders the figures of every activation of the route;
- a user's booking list (`keys.user_bookings`): members that sort by creation time, and
  the latest record of each booking (`keys.user_records`).
"""

from __future__ import annotations

import re

import msgspec

from actors.domain.views import Record


def availability_version(epoch: int, batches: int) -> int:
    """The version of a route's availability after `batches` confirmed batches of the
    activation `epoch`: it only grows, across activations too (the epoch only grows)."""
    return epoch << 32 | batches


class StoredAvailability(msgspec.Struct, array_like=True):
    """A route's availability as its actor stores it for front ends (keys.availability)."""

    version: int
    matrix: dict[str, list[int]]


_availability = msgspec.msgpack.Decoder(StoredAvailability)


def encode_availability(version: int, matrix: dict[str, list[int]]) -> bytes:
    """What keys.availability holds."""
    return msgspec.msgpack.encode(StoredAvailability(version, matrix))


def decode_availability(raw: bytes) -> StoredAvailability:
    """Decode keys.availability (raises msgspec.DecodeError if it is not one)."""
    return _availability.decode(raw)


#: what `member` makes; also the cursor of GET /v1/bookings (any such value is a position)
MEMBER_PATTERN = r"^[0-9]{10}\.[0-9]{6}:[A-Z0-9]{1,12}-[0-9]{8}-[0-9a-f]{24}$"
_MEMBER = re.compile(MEMBER_PATTERN)
#: where the booking id starts in a member (the readers' Lua cuts it there)
MEMBER_ID_AT = 18
_record = msgspec.msgpack.Decoder(Record)
encode_record = msgspec.msgpack.Encoder().encode


def member(rec: Record) -> str:
    """The record's place in its user's list: creation time (fixed width), then its id."""
    # fixed width (17 chars + ':' = 18) so lexical order is time order, ties by id
    return f"{rec.created_at:017.6f}:{rec.booking_id}"


def is_member(value: str) -> bool:
    """Whether `value` has the shape of a list position (what `member` makes)."""
    return bool(_MEMBER.match(value))


def decode_record(raw: bytes) -> Record:
    """A booking's latest record as stored in its user's list."""
    return _record.decode(raw)

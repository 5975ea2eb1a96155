"""A user's own bookings across routes ("my orders"), durable in Redis.

The route actor writes each booking's latest record in the same script as the
journal append that changed it (`journal.Journal.append`), so the list
survives every crash the journal survives. Front ends read pages of it
without waking any actor: ZREVRANGEBYLEX over members that sort by creation
time, then HMGET of the page's records, one round trip.
"""

from __future__ import annotations

import re

import msgspec
import redis.asyncio as aredis

from actors.domain.views import Record
from actors.storage import keys

#: newest first: a page is the `limit` members before the cursor (exclusive)
_PAGE = """
local members = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, ARGV[2])
if #members == 0 then return {} end
local ids = {}
for i, m in ipairs(members) do ids[i] = string.sub(m, 19) end
local records = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, m in ipairs(members) do
  out[2 * i - 1] = m
  out[2 * i] = records[i] or ''
end
return out
"""

#: what `member` makes; also the cursor of GET /v1/bookings (any such value is a position)
MEMBER_PATTERN = r"^[0-9]{10}\.[0-9]{6}:[A-Z0-9]{1,12}-[0-9]{8}-[0-9a-f]{24}$"
_MEMBER = re.compile(MEMBER_PATTERN)
_record = msgspec.msgpack.Decoder(Record)
_encode = msgspec.msgpack.Encoder().encode


def member(rec: Record) -> str:
    """The record's place in its user's list: creation time (fixed width), then its id."""
    # fixed width (17 chars + ':' = 18) so lexical order is time order, ties by id
    return f"{rec.created_at:017.6f}:{rec.booking_id}"


def fields(records: list[Record]) -> list[bytes]:
    """Per record, what the append script writes: its two keys, member, id and record.

    The keys travel as arguments, not KEYS: like keys.HOLDS, that holds on the one Redis
    primary ticketd targets, not across a Redis Cluster's slots."""
    out: list[bytes] = []
    for rec in records:
        out += [
            keys.user_bookings(rec.user).encode(),
            keys.user_records(rec.user).encode(),
            member(rec).encode(),
            rec.booking_id.encode(),
            _encode(rec),
        ]
    return out


def is_member(value: str) -> bool:
    """Whether `value` has the shape of a list position (what `member` makes)."""
    return bool(_MEMBER.match(value))


class UserIndex:
    """Reads pages of users' bookings (front-end side)."""

    def __init__(self, client: aredis.Redis) -> None:
        self._page = client.register_script(_PAGE)

    async def page(
        self, user: str, after: str | None, limit: int
    ) -> tuple[list[Record], str | None]:
        """Up to `limit` records older than `after` (a member), newest first, and the
        member to continue after (None on the last page)."""
        start = "+" if after is None else f"({after}"
        # one extra tells whether another page follows
        raw = await self._page(
            keys=[keys.user_bookings(user), keys.user_records(user)], args=[start, limit + 1]
        )
        rows = [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]
        more = len(rows) > limit
        rows = rows[:limit]
        records = [_record.decode(data) for _, data in rows if data]
        last = rows[-1][0] if rows and more else None
        nxt = last.decode() if isinstance(last, bytes) else last
        return records, nxt

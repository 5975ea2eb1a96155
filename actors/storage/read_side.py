"""What a front end reads of storage, and the one mark it writes: the read side of the
journal (docs/architecture.md, "Durability and fencing"). The formats it shares with the
route actors that write them are in `formats.py`.

- `UserIndex`: pages of a user's own bookings, newest first;
- `read_availability`: the availability each route's actor stored, for searches;
- `replay_availability`: the figures of a route journalled before it stored any;
- `CachedMarks`: the marks of booking keys a front end answered "sold out" itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis

from actors.domain.views import Record, availability_matrix
from actors.storage import keys, resp, topology
from actors.storage.formats import (
    MEMBER_ID_AT,
    StoredAvailability,
    decode_availability,
    decode_record,
)
from actors.storage.recovery import recover

#: newest first: a page is the `limit` members before the cursor (exclusive)
_PAGE = """
local members = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, ARGV[2])
if #members == 0 then return {} end
local ids = {}
for i, m in ipairs(members) do ids[i] = string.sub(m, tonumber(ARGV[3])) end
local records = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, m in ipairs(members) do
  out[2 * i - 1] = m
  out[2 * i] = records[i] or ''
end
return out
"""


async def read_availability(
    client: aredis.Redis, route_ids: Sequence[str]
) -> list[tuple[StoredAvailability | None, bool]]:
    """Per route, in one round trip: its stored availability (None if none yet), and
    whether it has a journal or snapshot at all."""
    pipe = client.pipeline(transaction=False)
    for rid in route_ids:
        pipe.get(keys.availability(rid))
        pipe.exists(keys.journal(rid), keys.snapshot(rid))
    answers: list[Any] = await pipe.execute()
    return [
        (None if raw is None else decode_availability(raw), bool(history))
        for raw, history in zip(answers[::2], answers[1::2], strict=True)
    ]


def replay_availability(redis_url: str, route_id: str) -> dict[str, list[int]]:
    """A route's availability replayed read-only from its journal (sync: run it in a
    thread), for a route journalled before actors stored their availability."""
    client = topology.sync_client(redis_url, socket_timeout=10)
    try:
        state, _ = recover(client, route_id)
    finally:
        client.close()
    return availability_matrix(state)


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
            keys=[keys.user_bookings(user), keys.user_records(user)],
            args=[start, limit + 1, MEMBER_ID_AT + 1],  # Lua counts from 1
        )
        rows = [(raw[i], raw[i + 1]) for i in range(0, len(raw), 2)]
        more = len(rows) > limit
        rows = rows[:limit]
        records = [decode_record(data) for _, data in rows if data]
        last = rows[-1][0] if rows and more else None
        nxt = last.decode() if isinstance(last, bytes) else last
        return records, nxt


class CachedMarks:
    """A front end's side of the idempotency markers the append script sets.

    A key answered "sold out" from a cache is marked `c<unix time>` unless it is marked
    already (journalled, or answered so before): `SET NX EX`, one command per key, each
    in its route's slot. Front ends coalesce their cached refusals
    (server/dispatch/refusals.py), and one call here sends all of them in one write, so
    a sold-out rush costs one round trip (one fsync) per loop turn, not one per request.
    The time is the front end's clock: it is compared with the append script's (Redis's)
    only against CLASH_WINDOW_SECONDS, a minute, far above any sane clock skew.
    """

    def __init__(self, client: aredis.Redis, url: str | None = None) -> None:
        self._client = client
        # url: the one server's, for the lean connection; None on a Redis Cluster
        self._lean = resp.LeanLink(url) if url and resp.supported(url) else None

    async def first(self, marks: Sequence[tuple[str, str, str]]) -> list[bool]:
        """Mark (route id, user, key) triples answered from the cache; for each, True if
        none was journalled or so answered before."""
        value = b"c%d" % int(time.time())
        ttl = keys.CACHED_MARKER_TTL
        markers = [keys.idem_marker(route_id, user, key) for route_id, user, key in marks]
        if self._lean is None:
            async with self._client.pipeline(transaction=False) as pipe:
                for marker in markers:
                    pipe.set(marker, value, nx=True, ex=ttl)
                got = await pipe.execute()
            return [bool(x) for x in got]
        conn = await self._lean.connection()
        # one command per key, all the same but the key: the tail is packed once
        head, tail = b"*6\r\n$3\r\nSET\r\n", resp.pack(value, "NX", "EX", ttl)[4:]
        replies = await conn.pipeline([head + resp.bulk(m) + tail for m in markers])
        return [reply is not None for reply in replies]

    def close(self) -> None:
        """Close the lean connection (the redis-py client is the caller's)."""
        if self._lean is not None:
            self._lean.close()

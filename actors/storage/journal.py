"""The durable backstop: a fenced, append-only journal and snapshots in Redis.

One batch of events is one XADD, made by a Lua script that first checks the
route's epoch, so an actor superseded by a newer activation can never append.
Redis answers only after the AOF is written (and fsynced with
`appendfsync always`), which is what "persist before reply" relies on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from actors.domain.messages import Event, Held, Waitlisted, decode_events, encode
from actors.domain.state import RouteState, next_deadline
from actors.domain.views import Record, availability_matrix, record
from actors.storage import keys, resp
from actors.storage.formats import encode_availability, encode_record, member

#: KEYS: epoch, journal, holds index, then the idempotency markers of the bookings this
#: batch creates. ARGV: epoch, events, route id, next hold deadline ('' if none), marker
#: TTL, clash window (s).
_APPEND = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED newer activation of this route exists')
end
local now = tonumber(redis.call('TIME')[1])
local clash = false
for i = 4, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v and string.sub(v, 1, 1) == 'c' and now - tonumber(string.sub(v, 2)) < tonumber(ARGV[6]) then
    clash = true
    redis.call('SET', KEYS[i], 'f', 'EX', ARGV[5])
  end
end
if clash then
  return redis.error_reply('CLASH a front end answered one of these keys from its cache')
end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
else
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
end
for i = 5, #KEYS do
  redis.call('SET', KEYS[i], 'f', 'EX', ARGV[5])
end
-- buyer reads (search, own bookings), durable with the events: KEYS[4], ARGV[7..8]
if ARGV[7] ~= nil and ARGV[7] ~= '' then
  redis.call('SET', KEYS[4], ARGV[7])
end
if ARGV[8] ~= nil and ARGV[8] ~= '' then
  local f, pos, blob = {}, 1, ARGV[8]
  while pos <= #blob do  -- fields as '<length>:<bytes>', five per booking record
    local colon = string.find(blob, ':', pos, true)
    local len = tonumber(string.sub(blob, pos, colon - 1))
    f[#f + 1] = string.sub(blob, colon + 1, colon + len)
    pos = colon + len + 1
  end
  for i = 1, #f, 5 do
    redis.call('ZADD', f[i], 0, f[i + 2])
    redis.call('HSET', f[i + 1], f[i + 3], f[i + 4])
  end
end
return id
"""

_SNAPSHOT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED newer activation of this route exists')
end
redis.call('HSET', KEYS[3], 'data', ARGV[2], 'last_id', ARGV[3], 'epoch', ARGV[1])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3])
return 1
"""

_PUBLISH_AVAILABILITY = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('FENCED newer activation of this route exists')
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""


def publish_availability(client: redis.Redis, route_id: str, epoch: int, payload: bytes) -> None:
    """Store availability outside an append (at activation), fenced like an append (sync)."""
    script = client.register_script(_PUBLISH_AVAILABILITY)
    try:
        script(keys=[keys.epoch(route_id), keys.availability(route_id)], args=[epoch, payload])
    except redis.ResponseError as exc:
        if str(exc).startswith("FENCED"):
            raise Fenced(str(exc)) from exc
        raise


def _netstrings(parts: list[bytes]) -> bytes:
    # the append script splits this back into fields (see _APPEND)
    return b"".join(b"%d:%b" % (len(p), p) for p in parts)


def _record_fields(records: list[Record]) -> list[bytes]:
    """Per record, the five fields the append script writes (see _APPEND): its user's two
    keys, its member and id, and the record.

    The keys travel as arguments, not KEYS: like keys.HOLDS, that holds on the one Redis
    primary ticketd targets, not across a Redis Cluster's slots."""
    out: list[bytes] = []
    for rec in records:
        out += [
            keys.user_bookings(rec.user).encode(),
            keys.user_records(rec.user).encode(),
            member(rec).encode(),
            rec.booking_id.encode(),
            encode_record(rec),
        ]
    return out


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """Everything one batch stores, worked out from its events and the state after them
    (`batch_write`); `Journal.write` stores it in one fenced round trip."""

    payload: bytes
    next_deadline: float | None
    markers: list[str]
    availability: bytes
    records: list[Record]


def batch_write(route_id: str, events: list[Event], state: RouteState, version: int
                ) -> BatchWrite:  # fmt: skip
    """What a batch stores, taken now: `state` must be exactly the journal plus `events`.

    The events themselves; the earliest live hold deadline after them (so expiry never
    misses the route); the idempotency markers of the bookings they create (so a booking
    is journalled if and only if its key is marked); and for the reads that wake no
    actor, the route's availability at `version` and the latest record of each booking
    they changed."""
    changed = dict.fromkeys(e.booking_id for e in events)
    return BatchWrite(
        encode(events),
        next_deadline(state),
        [keys.idem_marker(route_id, e.user, e.key) for e in events
         if isinstance(e, Held | Waitlisted)],
        encode_availability(version, availability_matrix(state)),
        [record(state.bookings[bid]) for bid in changed],
    )  # fmt: skip


class Fenced(Exception):
    """A newer activation of the route exists; this one must stop writing."""


class KeyClash(Exception):
    """A booking key of the batch was answered "sold out" from a front end's cache while
    the booking was on its way: nothing was journalled, so both answers agree."""


class JournalCorrupt(Exception):
    """A journal entry or snapshot cannot be decoded: recovery stops instead of guessing."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What recovery reads: the snapshot (if any) and the journal entries after it."""

    snapshot: bytes | None
    snapshot_last_id: str
    entries: list[tuple[str, bytes]]

    def events(self) -> Iterator[tuple[str, list[Event]]]:
        """Decode each journal entry, failing loudly on the first corrupt one."""
        for entry_id, raw in self.entries:
            try:
                yield entry_id, decode_events(raw)
            except msgspec.DecodeError as exc:
                raise JournalCorrupt(f"journal entry {entry_id} is corrupt: {exc}") from exc


def activate(client: redis.Redis, route_id: str) -> int:
    """Take a new epoch for this activation (sync: runs in the actor constructor)."""
    return int(client.incr(keys.epoch(route_id)))


def load(client: redis.Redis, route_id: str, page: int = 5000) -> Stored:
    """Read the snapshot and every journal entry after it (sync, for recovery)."""
    snap: list[Any] = client.hmget(keys.snapshot(route_id), ["data", "last_id"])
    data, last = snap[0], snap[1]
    last_id = last.decode() if last else "0-0"
    entries: list[tuple[str, bytes]] = []
    start = f"({last_id}"
    while True:
        chunk: list[Any] = client.xrange(keys.journal(route_id), min=start, count=page)  # type: ignore[assignment]
        for entry_id, fields in chunk:
            eid = entry_id.decode()
            raw = fields.get(b"e")
            if raw is None:
                raise JournalCorrupt(f"journal entry {eid} of {route_id} has no events field")
            entries.append((eid, raw))
        if len(chunk) < page:
            break
        start = f"({entries[-1][0]}"
    return Stored(data, last_id, entries)


class Journal:
    """Async writer for one route, owned by its actor.

    Appends go over a lean connection (actors/storage/resp.py) when the URL allows, else through
    redis-py; snapshots always through redis-py.
    """

    @classmethod
    def open(cls, redis_url: str, route_id: str, epoch: int) -> Journal:
        """The writer a route actor appends with: its own client, which never retries."""
        # never retry an append inside the client: a lost reply to a write that landed
        # would journal the batch twice. The batch answers "unavailable" instead, and the
        # client retries with its idempotency key against the reloaded state.
        client = aredis.Redis.from_url(
            redis_url, socket_timeout=10, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        return cls(client, route_id, epoch, lean_url=redis_url)

    def __init__(
        self, client: aredis.Redis, route_id: str, epoch: int, lean_url: str | None = None
    ) -> None:
        self.client = client
        self.route_id = route_id
        self.epoch = epoch
        self._keys = [keys.epoch(route_id), keys.journal(route_id), keys.HOLDS]
        self._keys.append(keys.availability(route_id))  # KEYS[4]
        self._snap_keys = [keys.epoch(route_id), keys.journal(route_id), keys.snapshot(route_id)]
        self._append = client.register_script(_APPEND)
        self._snapshot = client.register_script(_SNAPSHOT)
        lean = lean_url if lean_url and resp.supported(lean_url) else None
        self._lean = None if lean is None else resp.LeanLink(lean)

    async def _call_append(self, keys_: list[str], args: list[bytes | str | int]) -> Any:
        if self._lean is None:
            return await self._append(keys=keys_, args=args)
        return await self._lean.evalsha(self._append.sha, _APPEND, keys_, args)

    async def append(
        self,
        payload: bytes,
        next_deadline: float | None = None,
        markers: Sequence[str] = (),
        availability: bytes = b"",
        records: list[Record] | None = None,
    ) -> str:
        """Append one batch in one round trip; raises Fenced, KeyClash or a Redis error.

        `next_deadline` is the earliest live hold deadline after this batch (None: no
        holds), recorded in the same script so expiry never misses a route. `markers` are
        the idempotency markers (keys.idem_marker) of the bookings the batch creates: set
        in the same script, so a booking is journalled if and only if its key is marked.
        So are the route's `availability` after the batch (`encode_availability`) and the
        latest `records` of the bookings it changed, for the buyer reads that wake no actor.
        """
        deadline = "" if next_deadline is None else repr(next_deadline)
        args: list[bytes | str | int] = [
            self.epoch, payload, self.route_id, deadline, keys.IDEM_MARKER_TTL,
            keys.CLASH_WINDOW_SECONDS,
        ]  # fmt: skip
        args += [availability, _netstrings(_record_fields(records or []))]  # ARGV[7..8]
        try:
            entry_id = await self._call_append([*self._keys, *markers], args)
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise Fenced(str(exc)) from exc
            if str(exc).startswith("CLASH"):
                raise KeyClash(str(exc)) from exc
            raise
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def write(self, batch: BatchWrite) -> str:
        """Store one batch (`batch_write`); raises Fenced, KeyClash or a Redis error."""
        return await self.append(
            batch.payload, batch.next_deadline, batch.markers, batch.availability, batch.records
        )

    async def write_snapshot(self, data: bytes, last_id: str) -> None:
        """Store a snapshot covering entries up to last_id and trim the journal before it."""
        try:
            await self._snapshot(keys=self._snap_keys, args=[self.epoch, data, last_id])
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise Fenced(str(exc)) from exc
            raise

"""The durable backstop: a fenced, append-only journal and snapshots in Redis.

One batch of events is one XADD, made by a Lua script that first checks the
route's epoch, so an actor superseded by a newer activation can never append.
Redis answers only after the AOF is written (and fsynced with
`appendfsync always`), which is what "persist before reply" relies on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from actors.domain.messages import Event, decode_events
from actors.domain.views import Record
from actors.storage import keys, resp, user_index

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
        self._lean_url = lean_url if lean_url and resp.supported(lean_url) else None
        self._lean: resp.RespConnection | None = None

    async def _call_append(self, keys_: list[str], args: list[bytes | str | int]) -> Any:
        if self._lean_url is None:
            return await self._append(keys=keys_, args=args)
        conn = self._lean
        if conn is None or not conn.open:
            conn = self._lean = await resp.RespConnection.connect(self._lean_url)
        try:
            return await conn.call(
                resp.pack("EVALSHA", self._append.sha, len(keys_), *keys_, *args)
            )
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # a restarted or flushed Redis forgot the script; EVALSHA did not run it
            return await conn.call(resp.pack("EVAL", _APPEND, len(keys_), *keys_, *args))

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
        args += [availability, _netstrings(user_index.fields(records or []))]  # ARGV[7..8]
        try:
            entry_id = await self._call_append([*self._keys, *markers], args)
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise Fenced(str(exc)) from exc
            if str(exc).startswith("CLASH"):
                raise KeyClash(str(exc)) from exc
            raise
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def write_snapshot(self, data: bytes, last_id: str) -> None:
        """Store a snapshot covering entries up to last_id and trim the journal before it."""
        try:
            await self._snapshot(keys=self._snap_keys, args=[self.epoch, data, last_id])
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise Fenced(str(exc)) from exc
            raise


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
        self._url = url if url and resp.supported(url) else None
        self._lean: resp.RespConnection | None = None
        self._connecting = asyncio.Lock()

    async def first(self, marks: Sequence[tuple[str, str, str]]) -> list[bool]:
        """Mark (route id, user, key) triples answered from the cache; for each, True if
        none was journalled or so answered before."""
        value = b"c%d" % int(time.time())
        ttl = keys.CACHED_MARKER_TTL
        markers = [keys.idem_marker(route_id, user, key) for route_id, user, key in marks]
        if self._url is None:
            async with self._client.pipeline(transaction=False) as pipe:
                for marker in markers:
                    pipe.set(marker, value, nx=True, ex=ttl)
                got = await pipe.execute()
            return [bool(x) for x in got]
        conn = await self._connection(self._url)
        # one command per key, all the same but the key: the tail is packed once
        head, tail = b"*6\r\n$3\r\nSET\r\n", resp.pack(value, "NX", "EX", ttl)[4:]
        replies = await conn.pipeline([head + resp.bulk(m) + tail for m in markers])
        return [reply is not None for reply in replies]

    async def _connection(self, url: str) -> resp.RespConnection:
        # one connection however many routes' calls ask at once: a lock, not a race that
        # opens several and leaks all but the last
        async with self._connecting:
            conn = self._lean
            if conn is None or not conn.open:
                conn = self._lean = await resp.RespConnection.connect(url)
            return conn

    def close(self) -> None:
        """Close the lean connection (the redis-py client is the caller's)."""
        if self._lean is not None:
            self._lean.close()
            self._lean = None

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
from actors.storage import keys, projection, resp, slots, topology
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

#: how long an append (or an activation's epoch) waits for its replicas' AOF (WAITAOF)
REPLICA_WAIT_MS = 2000

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

    The keys travel as arguments, not KEYS: on one Redis server only. On a Redis Cluster
    the script writes none of them (they are projected: actors/storage/projection.py)."""
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


def activate(client: redis.Redis, route_id: str, replicas: int = 0) -> int:
    """Take a new epoch for this activation (sync: runs in the actor constructor).

    With `replicas`, the new epoch is in that many replicas' AOF before the activation
    counts (WAITAOF, as every append): a failover cannot bring back the older epoch and
    let a superseded activation append again."""
    key = keys.epoch(route_id)
    if not replicas:
        return int(client.incr(key))
    replies = topology.on_primary(
        client, key, [("INCR", key), *slots.replica_wait(replicas, REPLICA_WAIT_MS)]
    )
    slots.check_replicated(replies[-1], replicas)
    return int(replies[0])


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
    def open(cls, redis_url: str, route_id: str, epoch: int, replicas: int = 0) -> Journal:
        """The writer a route actor appends with: its own client, which never retries."""
        # never retry an append inside the client: a lost reply to a write that landed
        # would journal the batch twice. The batch answers "unavailable" instead, and the
        # client retries with its idempotency key against the reloaded state.
        client = topology.async_client(
            redis_url, socket_timeout=10, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        return cls(client, route_id, epoch, lean_url=redis_url, replicas=replicas)

    def __init__(self, client: aredis.Redis, route_id: str, epoch: int,
                 lean_url: str | None = None, replicas: int = 0) -> None:  # fmt: skip
        self.client = client
        self.route_id = route_id
        self.epoch = epoch
        #: each append waits for the AOF of this many replicas (WAITAOF) before it counts
        self.replicas = replicas
        self._after = slots.packed_wait(replicas, REPLICA_WAIT_MS)
        cluster = lean_url is not None and topology.is_cluster(lean_url)
        #: on a Redis Cluster: the read models outside the route's slot are a projection
        #: (actors/storage/projection.py), and appends go to the slot's primary
        self._slots = slots.SlotLinks(lean_url) if cluster and lean_url else None
        holds = keys.route_holds(route_id) if cluster else keys.HOLDS
        self._keys = [keys.epoch(route_id), keys.journal(route_id), holds]
        self._keys.append(keys.availability(route_id))  # KEYS[4]
        self._snap_keys = [keys.epoch(route_id), keys.journal(route_id), keys.snapshot(route_id)]
        self._append = client.register_script(_APPEND)
        self._snapshot = client.register_script(_SNAPSHOT)
        lean = lean_url if lean_url and resp.supported(lean_url) and not cluster else None
        self._lean = None if lean is None else resp.LeanLink(lean)

    async def _call_append(self, keys_: list[str], args: list[bytes | str | int]) -> Any:
        after = self._after
        if self._slots is not None:
            replies = await self._slots.evalsha(self._append.sha, _APPEND, keys_, args, after)
        elif self._lean is not None and not after:  # the hot path: one command
            return await self._lean.evalsha(self._append.sha, _APPEND, keys_, args)
        elif self._lean is not None:
            replies = await self._lean.evalsha_all(self._append.sha, _APPEND, keys_, args, after)
        elif not after:
            return await self._append(keys=keys_, args=args)
        else:  # one connection: WAITAOF counts that connection's writes
            async with self.client.pipeline(transaction=False) as pipe:
                await self._append(keys=keys_, args=args, client=pipe)
                for command in slots.replica_wait(self.replicas, REPLICA_WAIT_MS):
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
            if isinstance(replies[0], Exception):
                raise replies[0]
        if after:
            slots.check_replicated(replies[-1], self.replicas)
        return replies[0]

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
        # ARGV[7..8]; on a cluster the records are projected after the append instead
        inline = b"" if self._slots is not None else _netstrings(_record_fields(records or []))
        args += [availability, inline]
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
        """Store one batch (`batch_write`); raises Fenced, KeyClash or a Redis error.

        On a cluster, its read models are written once the append is confirmed (and
        before it counts as stored: actors/storage/projection.py)."""
        entry_id = await self.append(
            batch.payload, batch.next_deadline, batch.markers, batch.availability, batch.records
        )
        if self._slots is not None:
            await projection.project(
                self._slots, self.route_id, batch.records, batch.next_deadline,
                self.replicas, REPLICA_WAIT_MS,
            )  # fmt: skip
        return entry_id

    async def write_snapshot(self, data: bytes, last_id: str) -> None:
        """Store a snapshot covering entries up to last_id and trim the journal before it."""
        try:
            await self._snapshot(keys=self._snap_keys, args=[self.epoch, data, last_id])
        except redis.ResponseError as exc:
            if str(exc).startswith("FENCED"):
                raise Fenced(str(exc)) from exc
            raise

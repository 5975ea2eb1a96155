"""Where a sale's queue lives: Redis structures, shared by every front end of the cluster
and durable with the journal (AOF), so a restart of any process loses no place.

Why Redis alone and not an actor per sale: the queue needs an order (one counter),
one place per user (one hash) and a frontier (one field), each changed by short atomic
scripts; nothing is decided over a large state in memory, which is what a route actor is
for. A front end keeps no queue state of its own beyond a cache of the figures, so any
of them can fail at any time.

- `join`: places for users, one script per call; `Joins` coalesces joins into such
  calls, one in flight per sale (those that arrive meanwhile go in the next).
- `open`: the pre-queue drawn (order.opening_order) and written at once, only if no
  join came in meanwhile and nobody opened it before (then drawn again, or left alone);
  those who joined after the opening time but before the draw (a keeper's pass late)
  follow the drawn pre-queue in their arrival order, as every later joiner does.
- `advance`: the frontier moved by the policy (policy.advance) with Redis's clock, and
  written only if no other front end moved it since: many front ends, one frontier.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import redis
import redis.asyncio as aredis

from actors.storage import keys, resp
from server.waiting import policy
from server.waiting.order import opening_order

_JOIN = """
local opened = redis.call('HGET', KEYS[1], 'opened')
if not opened then return redis.error_reply('NOSALE no such sale') end
-- past the opening time and not drawn yet: a latecomer, placed after the pre-queue
local pending = KEYS[4]
local opens_at = tonumber(redis.call('HGET', KEYS[1], 'opens_at'))
if opened == '0' and opens_at then
  local t = redis.call('TIME')
  if tonumber(t[1]) + tonumber(t[2]) / 1e6 >= opens_at then pending = KEYS[5] end
end
local out = {}
for i, user in ipairs(ARGV) do
  local place = redis.call('HGET', KEYS[3], user)
  if place then
    out[i] = tonumber(place)
  elseif redis.call('HEXISTS', KEYS[2], user) == 1 then
    out[i] = 0  -- in the pre-queue
  else
    redis.call('HSET', KEYS[2], user, redis.call('HINCRBY', KEYS[1], 'joins', 1))
    if opened == '1' then
      place = redis.call('HINCRBY', KEYS[1], 'next_place', 1)
      redis.call('HSET', KEYS[3], user, place)
      out[i] = place
    else
      redis.call('RPUSH', pending, user)
      out[i] = 0
    end
  end
end
return out
"""

#: ARGV: the pre-queue's length when it was read, then its users in their drawn order;
#: the latecomers follow them in arrival order
_OPEN = """
if redis.call('HGET', KEYS[1], 'opened') ~= '0' then return -1 end
if redis.call('LLEN', KEYS[3]) ~= tonumber(ARGV[1]) then return -2 end
for i = 2, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], i - 1) end
local placed = #ARGV - 1
for _, user in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
  placed = placed + 1
  redis.call('HSET', KEYS[2], user, placed)
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'opened', 1, 'next_place', placed,
           'last_advance', t[1] .. '.' .. string.format('%06d', t[2]))
redis.call('DEL', KEYS[3], KEYS[4])
return #ARGV - 1
"""

#: ARGV: the last_advance the move was computed from, the new frontier, carry and time
#: the sale's move state and Redis's clock, from the server holding the sale (on a Redis
#: Cluster, TIME has no key: a pipeline could not tell which node to ask)
_STATE = """
local t = redis.call('TIME')
return {redis.call('HMGET', KEYS[1], 'opened', 'state', 'frontier', 'carry',
                   'last_advance', 'next_place'), t[1], t[2]}
"""

_ADVANCE = """
if redis.call('HGET', KEYS[1], 'last_advance') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'frontier', ARGV[2], 'carry', ARGV[3], 'last_advance', ARGV[4])
return 1
"""


def _text(value: bytes | str | None) -> str:
    # a field of a sale's hash; every one is set when the sale is created
    return value.decode() if isinstance(value, bytes) else str(value)


#: how long a join's write may take over the lean connection
_LEAN_TIMEOUT = 5.0


class NoSuchSale(Exception):
    """The sale has no queue (never created, or the database was wiped)."""


@dataclass(frozen=True, slots=True)
class Figures:
    """A sale's queue as every front end caches it for polls."""

    opened: bool
    state: str
    frontier: int
    #: places given so far (the queue's end)
    queued: int
    joins: int


class QueueStore:
    """A sale's queue in Redis. Joins, the crowd's writes, go over a lean connection
    (actors/storage/resp.py, as a route actor's appends do) when `lean_url` names a
    server it can talk to; everything else over redis-py."""

    def __init__(self, client: aredis.Redis, lean_url: str | None = None) -> None:
        self.client = client
        lean = lean_url if lean_url and resp.supported(lean_url) else None
        self._lean = None if lean is None else resp.LeanLink(lean)
        self._join = client.register_script(_JOIN)
        self._open = client.register_script(_OPEN)
        self._advance = client.register_script(_ADVANCE)
        self._state = client.register_script(_STATE)

    async def create(self, sale_id: str, state: str = policy.SCHEDULED,
                     opens_at: float | None = None) -> None:  # fmt: skip
        """An empty queue (a second call leaves an existing one alone). From `opens_at`
        (unix time) on, a join before the draw is a latecomer's, not the pre-queue's."""
        fields: dict[str, str | int | float] = {
            "opened": 0, "state": state, "frontier": 0, "carry": 0, "last_advance": "0",
            "next_place": 0, "joins": 0,
        }  # fmt: skip
        if opens_at is not None:
            fields["opens_at"] = repr(opens_at)
        async with self.client.pipeline(transaction=True) as pipe:
            for name, value in fields.items():
                pipe.hsetnx(keys.sale(sale_id), name, value)
            await pipe.execute()

    async def set_state(self, sale_id: str, state: str) -> None:
        await self.client.hset(keys.sale(sale_id), "state", state)

    async def join(self, sale_id: str, users: list[str]) -> list[int]:
        """Each user's place (0: in the pre-queue); joining again answers the same."""
        ks = [keys.sale(sale_id), keys.sale_joined(sale_id), keys.sale_places(sale_id),
              keys.sale_prequeue(sale_id), keys.sale_latecomers(sale_id)]  # fmt: skip
        try:
            got = await self._call_join(ks, users)
        except redis.ResponseError as exc:
            if str(exc).startswith("NOSALE"):
                raise NoSuchSale(sale_id) from None
            raise
        return [int(p) for p in got]

    def close(self) -> None:
        """Close the lean connection, if one is open (at shutdown)."""
        if self._lean is not None:
            self._lean.close()

    async def _call_join(self, ks: list[str], users: list[str]) -> list[int]:
        if self._lean is None:
            got: list[int] = await self._join(keys=ks, args=users)
            return got
        try:
            async with asyncio.timeout(_LEAN_TIMEOUT):
                placed: list[int] = await self._lean.evalsha(self._join.sha, _JOIN, ks, users)
                return placed
        except TimeoutError:
            # the join may or may not have landed: joining again answers the same place
            raise redis.TimeoutError("Redis did not answer the join in time") from None

    async def open(self, sale_id: str, rng: random.Random | None = None) -> int:
        """Draw the pre-queue's places; the number drawn, or -1 if it was opened before."""
        ks = [keys.sale(sale_id), keys.sale_places(sale_id), keys.sale_prequeue(sale_id),
              keys.sale_latecomers(sale_id)]  # fmt: skip
        while True:
            raw = await self.client.lrange(keys.sale_prequeue(sale_id), 0, -1)
            users = [u.decode() if isinstance(u, bytes) else str(u) for u in raw]
            drawn = opening_order(users, rng)
            got = int(await self._open(keys=ks, args=[len(users), *drawn]))
            if got != -2:  # -2: someone joined while we drew: draw them too
                return got

    async def figures(self, sale_id: str) -> Figures:
        """What polls are answered from (a front end reads it a few times a second)."""
        raw = await self.client.hmget(
            keys.sale(sale_id), "opened", "state", "frontier", "next_place", "joins"
        )
        if raw[0] is None:
            raise NoSuchSale(sale_id)
        opened, state, frontier, queued, joins = (_text(x) for x in raw)
        return Figures(opened == "1", state, int(frontier), int(queued), int(joins))

    async def advance(
        self, sale_id: str, rule: policy.Policy, *, seats_left: int, settled: int = 0
    ) -> int:
        """Move the frontier by `rule` for the time since its last move (Redis's clock);
        the frontier after it. `settled`: admitted people known to have booked or let
        their admission lapse; the others are counted from the frontier read here, the
        one the move is written against. Several front ends may call at once: one move
        counts, and none is computed from a frontier another has moved since."""
        raw, secs, micros = await self._state(keys=[keys.sale(sale_id)])
        secs, micros = int(secs), int(micros)
        if raw[0] is None:
            raise NoSuchSale(sale_id)
        opened, state, frontier, carry, last, queued = (_text(x) for x in raw)
        now = f"{secs}.{micros:06d}"
        if opened != "1":
            return int(frontier)
        elapsed = float(now) - float(last) if state == policy.OPEN else 0.0
        step = policy.advance(
            rule, int(frontier), int(queued), elapsed=elapsed, carry=float(carry),
            seats_left=seats_left, unbooked=max(0, int(frontier) - settled),
        )  # fmt: skip
        args: list[str | int] = [last, step.frontier, repr(step.carry), now]
        moved = await self._advance(keys=[keys.sale(sale_id)], args=args)
        if not moved:  # another front end moved it first: its move stands
            return (await self.figures(sale_id)).frontier
        return step.frontier


class Joins:
    """Joins, coalesced: one script call in flight per sale at a time, carrying every join
    that arrived since the last one was sent (at least every join of one event-loop
    turn). A crowd joining costs Redis one round trip and one fsync per write, and the
    front end one client call per write, not per join."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store
        self._pending: dict[str, list[tuple[str, asyncio.Future[int]]]] = {}
        self._writing: set[str] = set()  # sales with a write in flight
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def join(self, sale_id: str, user: str) -> int:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._pending.setdefault(sale_id, []).append((user, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # at the end of this loop turn
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        for sale_id in [s for s in self._pending if s not in self._writing]:
            self._start(sale_id)  # the others go when their write in flight is done

    def _start(self, sale_id: str) -> None:
        joins = self._pending.pop(sale_id)
        self._writing.add(sale_id)
        task = asyncio.create_task(self._write(sale_id, joins))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _write(self, sale_id: str, joins: list[tuple[str, asyncio.Future[int]]]) -> None:
        try:
            places = await self.store.join(sale_id, [user for user, _ in joins])
        except BaseException as exc:  # every waiter hears back, whatever happened
            self._writing.discard(sale_id)
            for _, future in joins:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # cancelled (shutdown): what is pending waits for no one
            if sale_id in self._pending:
                self._start(sale_id)
            return
        self._writing.discard(sale_id)
        if sale_id in self._pending:
            self._start(sale_id)  # before answering: the next write is on its way
        for (_, future), place in zip(joins, places, strict=True):
            if not future.done():
                future.set_result(place)

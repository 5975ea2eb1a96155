"""One rule, in one place: a booking is answered "sold out" from the front end's
snapshot, unless some actor journalled its key (docs/architecture.md, "Answers from
memory"; the guarantees are in the README, "Sold out, answered from memory").

`Refusals.short` and `Refusals.sold_out` decide it for the booking endpoint. A key this
front end forwarded to an actor recently always goes to the actor again: a retry of a
booking that exists must get its first answer. Otherwise, when the snapshot (at most
TICKETD_AVAILABILITY_REFRESH old) shows too few seats, the key is marked `c<time>` in
Redis before the 409 (keys.idem_marker): a first attempt of it still in flight at any
front end is then refused by the append script instead of booked. That mark is the only
I/O a cached refusal costs, and it is shared (`RefusalMarks`): every refusal of one
event-loop turn, whatever their number and routes, waits on one pipelined write of `SET
NX` commands, so a sold-out rush costs Redis one round trip (one fsync) per loop turn,
not one per request.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import redis
import structlog

from actors.storage.read_side import CachedMarks
from server.dispatch.channel import Channel
from server.dispatch.errors import RouteUnavailable

log = structlog.get_logger("ticketd.refusals")

_Pending = list[tuple[str, str, str, "asyncio.Future[bool]"]]
#: idempotency keys this front end forwarded recently: their repeats must reach the actor
#: (which answers the first result) even when the snapshot says sold out
SEEN_KEYS_MAX = 200_000


class Refusals:
    """Which bookings this front end may answer "sold out" itself."""

    def __init__(self, marks: CachedMarks, refresh: float, seen_max: int = SEEN_KEYS_MAX):
        self.marks = RefusalMarks(marks)
        self.refresh = refresh
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._seen_max = seen_max

    def short(self, ch: Channel, user: str, key: str, klass: str, i: int, j: int, n: int
              ) -> bool:  # fmt: skip
        """True if the snapshot shows fewer than `n` free seats of `klass` from station i
        to j and this key was not forwarded to the actor: a candidate for `sold_out`.
        (No coroutine: every booking asks, few are refused.)"""
        if (user, key) in self._seen:
            return False  # only the actor knows this key's answer
        free = ch.free_seats(klass, i, j, self.refresh)
        return free is not None and free < n

    async def sold_out(self, ch: Channel, user: str, key: str) -> bool:
        """For a `short` booking: mark its key and say True if it is answered sold out now
        (no actor journalled the key); RouteUnavailable if the mark cannot be written."""
        try:
            return await self.marks.first(ch.route.route_id, user, key)
        except (redis.RedisError, OSError):
            raise RouteUnavailable(ch.route.route_id) from None

    def forwarded(self, user: str, key: str) -> None:
        """Remember that this key goes to an actor (the oldest of too many is forgotten)."""
        seen = self._seen
        seen[(user, key)] = None
        if len(seen) > self._seen_max:
            seen.popitem(last=False)

    def close(self) -> None:
        """Close the marks' own connection (shutdown)."""
        self.marks.close()


class RefusalMarks:
    """Collects the marks of one loop turn and writes them at once."""

    def __init__(self, marks: CachedMarks) -> None:
        self._marks = marks
        self._pending: _Pending = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def first(self, route_id: str, user: str, key: str) -> bool:
        """Mark the key; True if no actor journalled it and no front end answered it from a
        cache before. Raises a Redis error (or OSError) if the mark cannot be written."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((route_id, user, key, future))
        if not self._scheduled:
            # at the end of this loop turn: every refusal parsed in the turn joins the write
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        task = asyncio.create_task(self._write(pending))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _write(self, marks: _Pending) -> None:
        try:
            got = await self._marks.first([(r, u, k) for r, u, k, _ in marks])
        except (redis.RedisError, OSError) as exc:
            log.warning("cached refusals not marked", refusals=len(marks), error=repr(exc))
            for _, _, _, future in marks:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException as exc:  # cancelled at shutdown: nobody may wait forever
            for _, _, _, future in marks:
                if not future.done():
                    future.set_exception(redis.ConnectionError(repr(exc)))
            raise
        for (_, _, _, future), first in zip(marks, got, strict=True):
            if not future.done():
                future.set_result(first)

    def close(self) -> None:
        """Close the marks' own connection (shutdown)."""
        self._marks.close()

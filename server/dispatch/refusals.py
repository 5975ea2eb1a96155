"""Cached "sold out" answers, marked in Redis in coalesced writes.

A front end answers a booking "sold out" from its availability snapshot only for a key
no actor journalled (a retry of a booking that exists must get its first answer), and it
marks the key `c<time>` before answering, so a first attempt still in flight at any
front end is refused by the append script instead of booked (keys.idem_marker). That
mark is the only I/O a cached refusal costs, and it is shared: every refusal of one
event-loop turn, whatever their number and routes, waits on one pipelined write of
`SET NX` commands, so a sold-out rush costs Redis one round trip (one fsync) per loop
turn, not one per request.
"""

from __future__ import annotations

import asyncio

import redis
import structlog

from actors.storage.journal import CachedMarks

log = structlog.get_logger("ticketd.refusals")

_Pending = list[tuple[str, str, str, "asyncio.Future[bool]"]]


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

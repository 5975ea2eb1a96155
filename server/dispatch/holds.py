"""Holds expire on time even when their route's actor is down or deactivated.

The actor expires its own holds while it runs. Every front end also polls the earliest
hold deadline of each route (`keys.HOLDS`, written with each journal append) and wakes a
route whose deadline passed; several front ends doing so at once is harmless, since a
sweep is idempotent.
"""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aredis
import structlog
from ray import exceptions as rex

from actors.storage import keys
from server.dispatch.connector import Connector

log = structlog.get_logger("ticketd.gateway")
#: the longest the keeper waits for one route's sweep (it may activate the route)
_SWEEP_TIMEOUT = 30.0


class HoldKeeper:
    """Wakes the routes whose earliest hold is overdue."""

    def __init__(self, client: aredis.Redis, connector: Connector) -> None:
        self.client = client
        self.connector = connector

    async def run(self, interval: float = 0.5) -> None:
        """Look every `interval` seconds until cancelled; a failed pass is logged."""
        while True:
            stop_if_cancelled()
            await asyncio.sleep(interval)
            try:
                await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep keeping: Redis or Ray may come back
                log.warning("hold keeper pass failed", error=repr(exc))

    async def _pass(self) -> None:
        due = await self.client.zrangebyscore(keys.HOLDS, "-inf", time.time(), 0, 100)
        for raw in due:
            route_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not await self.client.hexists(keys.ROUTES, route_id):
                # a holds entry for a route whose definition is gone (a wiped database):
                # activating an actor for it could only fail
                await self.client.zrem(keys.HOLDS, route_id)
                continue
            # a grace second: a live actor's own sweeper normally gets there first
            score = await self.client.zscore(keys.HOLDS, route_id)
            if score is not None and score > time.time() - 1.0:
                continue
            handle = await self.connector.handle(route_id)
            try:
                # bounded: one frozen actor must not stop expiry for every route
                async with asyncio.timeout(_SWEEP_TIMEOUT):
                    await handle.sweep.remote()
            except rex.ActorDiedError:
                self.connector.directory.forget(route_id)


def stop_if_cancelled() -> None:
    """Raise the cancel a library swallowed, so a loop stops when it is told to.

    On Python 3.11, `asyncio.wait_for` returns normally when it is cancelled in the same
    turn as its inner future completes (CPython gh-86296, fixed in 3.12), and redis-py
    writes through `wait_for` when a socket timeout is set. A cancelled loop then runs
    on, and makes new connections after its client was closed. `Task.cancelling()` still
    counts the request: act on it at every turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

"""Per-route batching and admission: the requests for one route that arrive while a call
to its actor is in flight queue up and go together in the next call, so batches grow with
load by themselves. Under load a call also gathers: it waits until as many requests have
queued as the last call saw, at most `TICKETD_BATCH_LINGER_MS` (8 ms), instead of leaving
with the few that happen to be there, so each call's fixed cost is shared by more
bookings. A lone request never waits. A route whose queue is full answers 503 at once
(docs/architecture.md, "The planes").
"""

from __future__ import annotations

import asyncio
import time

import structlog

from actors.domain.messages import Command, encode
from actors.domain.views import Result
from actors.plane import protocol
from server import metrics
from server.dispatch.channel import Channel
from server.dispatch.connector import Connector
from server.dispatch.errors import Overloaded, RouteUnavailable
from server.settings import Settings

log = structlog.get_logger("ticketd.gateway")

#: a route counts as under load this long after a call that saw several requests (its
#: next requests can take milliseconds to arrive on a busy machine)
_LOADED_SECONDS = 0.1


class Batches:
    """Sends each route's commands to its actor, batched with concurrent ones."""

    def __init__(self, settings: Settings, connector: Connector) -> None:
        self.settings = settings
        self.connector = connector
        self._tasks: set[asyncio.Task[None]] = set()

    def admit(self, ch: Channel) -> None:
        """Refuse at once when the route's queue is full: a 503 must cost next to nothing."""
        if self.settings.batching and len(ch.queue) >= self.settings.max_queue:
            metrics.OVERLOADED.inc()
            raise Overloaded(ch.route.route_id, len(ch.queue))

    async def call(self, ch: Channel, cmd: Command) -> Result:
        """Run one command on the route's actor, batched with concurrent ones."""
        if not self.settings.batching:
            return (await self._send(ch, [cmd]))[0]
        if ch.down and ch.inflight:
            # its actor stopped answering (e.g. its node died and Ray has not restarted it
            # yet): the call in flight probes it, everyone else hears 503 now instead of
            # each waiting out Ray's retries (~5 s) for the same answer
            raise RouteUnavailable(ch.route.route_id)
        self.admit(ch)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        ch.queue.append((cmd, future))
        if ch.gathering is not None and len(ch.queue) >= ch.expected:
            _release(ch.gathering)
        if ch.inflight < self.settings.calls_in_flight:
            ch.inflight += 1
            task = asyncio.create_task(self._pump(ch))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _pump(self, ch: Channel) -> None:
        try:
            while ch.queue:
                if (
                    len(ch.queue) < ch.expected
                    and ch.gathering is None
                    and self.settings.batch_linger
                ):
                    # one call gathers at a time (TICKETD_CALLS_IN_FLIGHT > 1: the others go)
                    await self._gather(ch)
                    if not ch.queue:
                        continue  # another call in flight took them meanwhile
                batch, ch.queue = ch.queue, []
                if ch.gathering is not None:
                    _release(ch.gathering)  # what it gathered for just left in this call
                metrics.BATCH_SIZE.observe(len(batch))
                try:
                    results = await self._send(ch, [cmd for cmd, _ in batch])
                except Exception as exc:  # every waiter must hear back, whatever happened
                    ch.expected = 0
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                # the requests this call carried and those that queued meanwhile: under load
                # the next call waits until as many have queued (`_gather`)
                seen = len(batch) + len(ch.queue)
                ch.expected = min(seen, self.settings.max_queue) if seen > 1 else 0
                ch.answered = time.monotonic()
                for (_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)
        finally:
            ch.inflight -= 1

    async def _gather(self, ch: Channel) -> None:
        """Wait, at most the linger, until as many requests queue as the last call saw.

        Only under load (the last call saw several requests, moments ago): a lone client,
        or a route that has been quiet, sends at once."""
        linger = self.settings.batch_linger
        if time.monotonic() - ch.answered > _LOADED_SECONDS:
            ch.expected = 0
            return
        loop = asyncio.get_running_loop()
        ch.gathering = gathering = loop.create_future()
        started = loop.time()
        timer = loop.call_later(linger, _release, gathering)
        try:
            await gathering
        finally:
            timer.cancel()
            ch.gathering = None
            metrics.GATHER.observe(loop.time() - started)

    async def _send(self, ch: Channel, commands: list[Command]) -> list[Result]:
        route_id = ch.route.route_id
        # no Redis trip here: the actor's append script marks the booking keys it journals
        payload = encode(commands)
        started = time.perf_counter()
        try:
            for attempt in (1, 2):
                link = await self.connector.link(ch)
                try:
                    raw = await link.request(protocol.OP_SUBMIT, payload)
                    break
                except protocol.Gone:
                    # the activation is deactivating and did not run the batch: resend
                    # to its successor, which Ray activates on the next address lookup
                    link.close()
                    if attempt == 2:
                        raise RouteUnavailable(route_id) from None
        except protocol.LinkLost as exc:
            # sent, and then the connection broke (actor crashed, node gone, actor frozen
            # past the request timeout): the batch may or may not have run. Every command
            # is idempotent, so the client retries with the same key.
            log.warning("data plane lost", route_id=route_id, error=str(exc))
            ch.down = True
            raise RouteUnavailable(route_id) from None
        except protocol.RemoteError as exc:
            log.warning("actor could not run a batch", route_id=route_id, error=str(exc))
            raise RouteUnavailable(route_id) from None
        finally:
            metrics.ACTOR_CALL.observe(time.perf_counter() - started)
        ch.down = False
        return ch.take_raw(raw).results

    def queue_depth(self, channels: list[Channel]) -> int:
        """Requests waiting across `channels` (for metrics)."""
        return sum(len(ch.queue) for ch in channels)


def _release(gathering: asyncio.Future[None]) -> None:
    if not gathering.done():
        gathering.set_result(None)

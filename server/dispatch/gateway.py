"""The front end's side of the route actors: per-route batching and read caches.

Requests for one route that arrive while a call to its actor is in flight
queue up and go together in the next call: no timer, so batches grow with
load by themselves. Each reply carries the availability rows that changed,
which update the front end's snapshot (a front end reads its own writes).

Two planes: Ray finds (or activates) a route's actor and tells where its data
plane listens (`address`); the batches themselves go over one authenticated
`Link` per route actor (server/dispatch/link.py), reconnected through Ray whenever it
breaks: a lost connection, a restarted actor (new address, new epoch) and a
fenced one are all normal events.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import ray
import redis
import redis.asyncio as aredis
import structlog
from ray import exceptions as rex

from actors.directory import Directory
from actors.domain.errors import Unavailable
from actors.domain.messages import Command, encode
from actors.domain.views import Reply, Result
from actors.plane import protocol
from actors.storage import journal, keys, routes_store
from server import metrics
from server.api.problems import Problem
from server.dispatch.channel import Channel
from server.dispatch.link import Link
from server.dispatch.readiness import RayCheck
from server.dispatch.refusals import RefusalMarks
from server.flight import SingleFlight
from server.settings import Settings

log = structlog.get_logger("ticketd.gateway")
#: how long Ray may take to say where a route's actor listens (activation included: a
#: worker process start and the route's recovery)
_ADDRESS_SECONDS = 30.0
_reply = msgspec.msgpack.Decoder(Reply)
#: the longest the hold keeper waits for one route's sweep (it may activate the route)
_SWEEP_TIMEOUT = 30.0


class Gateway:
    """Routes commands to actors: batching, retries on actor death, caches."""

    def __init__(self, settings: Settings, client: aredis.Redis, directory: Directory) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self._channels: dict[str, Channel] = {}
        self._loading: SingleFlight[str, Channel] = SingleFlight()
        self._tasks: set[asyncio.Task[None]] = set()
        self._node_id: str | None = None
        # cached refusals' marks, coalesced per loop turn (server/dispatch/refusals.py)
        self._refusals = RefusalMarks(journal.CachedMarks(client, directory.config.redis_url))
        self._ray_check = RayCheck()  # /readyz's, one in flight at a time

    # ---- routes -------------------------------------------------------------------

    async def channel(self, route_id: str) -> Channel:
        """The route's channel; Problem 404 if no such route exists."""
        ch = self._channels.get(route_id)
        if ch is not None:
            return ch
        # a cold route in a rush: one Redis read however many requests wait for it (a read
        # each would exhaust the connection pool)
        return await self._loading.run(route_id, lambda: self._load(route_id))

    async def _load(self, route_id: str) -> Channel:
        try:
            route = await routes_store.fetch(self.client, route_id)
        except routes_store.RouteNotFound:
            raise Problem("not-found", f"There is no route {route_id}.") from None
        # routes never change once created, so the definition is cached for good
        return self._channels.setdefault(route_id, Channel(route))

    def peek(self, route_id: str) -> Channel | None:
        """The route's channel if this front end has one, without loading anything."""
        return self._channels.get(route_id)

    def channels(self) -> list[Channel]:
        """Every route this front end has loaded (for the operator console)."""
        return list(self._channels.values())

    # ---- commands -----------------------------------------------------------------

    def admit(self, ch: Channel) -> None:
        """Refuse at once when the route's queue is full: a 503 must cost next to nothing."""
        if self.settings.batching and len(ch.queue) >= self.settings.max_queue:
            metrics.OVERLOADED.inc()
            raise Problem(
                "overloaded",
                f"Route {ch.route.route_id} has {len(ch.queue)} requests waiting; retry shortly.",
            )

    async def call(self, ch: Channel, cmd: Command) -> Result:
        """Run one command on the route's actor, batched with concurrent ones."""
        if not self.settings.batching:
            return (await self._send(ch, [cmd]))[0]
        if ch.down and ch.inflight:
            # its actor stopped answering (e.g. its node died and Ray has not restarted it
            # yet): the call in flight probes it, everyone else hears 503 now instead of
            # each waiting out Ray's retries (~5 s) for the same answer
            raise self._unavailable(ch.route.route_id)
        self.admit(ch)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        ch.queue.append((cmd, future))
        if ch.inflight < self.settings.calls_in_flight:
            ch.inflight += 1
            task = asyncio.create_task(self._pump(ch))
            self._tasks.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _pump(self, ch: Channel) -> None:
        try:
            while ch.queue:
                batch, ch.queue = ch.queue, []
                metrics.BATCH_SIZE.observe(len(batch))
                try:
                    results = await self._send(ch, [cmd for cmd, _ in batch])
                except Exception as exc:  # every waiter must hear back, whatever happened
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), res in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(res)
        finally:
            ch.inflight -= 1

    async def first_sight(self, route_id: str, user: str, key: str) -> bool:
        """Mark a booking key as answered from the cache; True if no actor journalled it
        (and no front end answered it so) before: see keys.idem_marker."""
        try:
            return await self._refusals.first(route_id, user, key)
        except (redis.RedisError, OSError):
            raise self._unavailable(route_id) from None

    async def _send(self, ch: Channel, commands: list[Command]) -> list[Result]:
        route_id = ch.route.route_id
        # no Redis trip here: the actor's append script marks the booking keys it journals
        payload = encode(commands)
        started = time.perf_counter()
        try:
            for attempt in (1, 2):
                link = await self._link(ch)
                try:
                    raw = await link.request(protocol.OP_SUBMIT, payload)
                    break
                except protocol.Gone:
                    # the activation is deactivating and did not run the batch: resend
                    # to its successor, which Ray activates on the next address lookup
                    link.close()
                    if attempt == 2:
                        raise self._unavailable(route_id) from None
        except protocol.LinkLost as exc:
            # sent, and then the connection broke (actor crashed, node gone, actor frozen
            # past the request timeout): the batch may or may not have run. Every command
            # is idempotent, so the client retries with the same key.
            log.warning("data plane lost", route_id=route_id, error=str(exc))
            ch.down = True
            raise self._unavailable(route_id) from None
        except protocol.RemoteError as exc:
            log.warning("actor could not run a batch", route_id=route_id, error=str(exc))
            raise self._unavailable(route_id) from None
        finally:
            metrics.ACTOR_CALL.observe(time.perf_counter() - started)
        ch.down = False
        reply = _reply.decode(raw)
        ch.take(reply)
        return reply.results

    @staticmethod
    def _unavailable(route_id: str) -> Problem:
        err = Unavailable(f"Route {route_id} is restarting; retry with the same Idempotency-Key.")
        return Problem(err.type, err.detail, route_id=route_id)

    async def _handle(self, route_id: str) -> Any:
        handle = self.directory.cached(route_id)
        if handle is None:
            # a GCS round trip: keep it off the event loop
            handle = await asyncio.to_thread(self.directory.get, route_id)
        return handle

    # ---- reads ----------------------------------------------------------------------

    def fresh_matrix(self, ch: Channel) -> dict[str, list[int]] | None:
        """The cached availability if it is within the refresh interval, else None."""
        if (
            ch.matrix is not None
            and time.monotonic() - ch.fetched <= self.settings.availability_refresh
        ):
            return ch.matrix
        return None

    async def matrix(self, ch: Channel) -> dict[str, list[int]]:
        """Availability for reads: cached, refreshed from the actor when stale."""
        fresh = self.fresh_matrix(ch)
        if fresh is not None:
            return fresh
        if ch.refreshing is None or ch.refreshing.done():
            # one refresh per route in flight, however many readers are waiting
            ch.refreshing = asyncio.create_task(self._refresh(ch))
        await asyncio.shield(ch.refreshing)
        assert ch.matrix is not None
        return ch.matrix

    async def _refresh(self, ch: Channel) -> None:
        try:
            link = await self._link(ch)
            raw = await link.request(protocol.OP_AVAILABILITY)
        except (Problem, protocol.PlaneError):
            if ch.matrix is not None:
                return  # serve the last known figures rather than fail a read
            raise self._unavailable(ch.route.route_id) from None
        ch.take(_reply.decode(raw))

    async def read(self, ch: Channel, op: int) -> bytes:
        """One read on the route's data plane outside the batches (the console's seat
        map); 503 Problem if the actor cannot answer."""
        try:
            link = await self._link(ch)
            return await link.request(op)
        except protocol.PlaneError:
            raise self._unavailable(ch.route.route_id) from None

    # ---- the data plane's connections -------------------------------------------------

    async def _link(self, ch: Channel) -> Link:
        """The route's open link, (re)connecting through Ray if there is none."""
        link = ch.link
        if link is not None and link.open:
            return link
        # one connection attempt per route however many requests wait for it; shielded, so
        # one waiter giving up does not cancel it for the others
        if ch.connecting is None or ch.connecting.done():
            ch.connecting = asyncio.create_task(self._connect(ch))
        return await asyncio.shield(ch.connecting)

    async def _connect(self, ch: Channel) -> Link:
        route_id = ch.route.route_id
        if ch.link is not None:
            ch.link.close()
            ch.link = None
        for attempt in (1, 2):
            handle = await self._handle(route_id)
            try:
                # Ray's control plane: activates the actor if needed, waits out a restart;
                # bounded, so a frozen node cannot hold this route's callers forever
                async with asyncio.timeout(_ADDRESS_SECONDS):
                    where = await handle.address.remote()
            except TimeoutError:
                log.warning("actor address lookup timed out", route_id=route_id)
                ch.down = True
                raise self._unavailable(route_id) from None
            except rex.ActorUnavailableError:
                # unreachable (e.g. its node died) and Ray's own retries are used up
                ch.down = True
                raise self._unavailable(route_id) from None
            except rex.ActorDiedError:
                # gone for good (idle deactivation, fenced): a fresh activation takes over
                self.directory.forget(route_id)
                if attempt == 2:
                    ch.down = True
                    raise self._unavailable(route_id) from None
                continue
            except rex.RayError as exc:
                log.warning("actor address lookup failed", route_id=route_id, error=repr(exc))
                ch.down = True
                raise self._unavailable(route_id) from None
            try:
                link = await Link.connect(
                    where,
                    self.settings.cluster_secret,
                    unix=self._same_node(where),
                    timeout=self.settings.plane_connect_timeout,
                    request_timeout=self.settings.plane_request_timeout,
                    label=f"route {route_id}",
                )
            except protocol.AuthFailed as exc:
                log.error("data plane refused", route_id=route_id, error=str(exc))
                ch.down = True
                raise self._unavailable(route_id) from None
            except (OSError, TimeoutError, protocol.PlaneError) as exc:
                # the activation that answered may have died since: ask Ray again
                log.warning("data plane connect failed", route_id=route_id, error=repr(exc))
                if attempt == 2:
                    ch.down = True
                    raise self._unavailable(route_id) from None
                continue
            metrics.PLANE_CONNECTS.inc()
            # the actor's first answer on a new connection carries every class: take it
            # whatever version we held
            ch.link, ch.version = link, -1
            return link
        raise self._unavailable(route_id)

    def _same_node(self, where: dict[str, Any]) -> bool:
        if self.settings.plane_transport == "tcp":
            return False
        if self._node_id is None:
            self._node_id = ray.get_runtime_context().get_node_id()
        return bool(where.get("node_id") == self._node_id)

    def close_links(self) -> None:
        """Close every data-plane connection (shutdown)."""
        self._refusals.close()
        for ch in self._channels.values():
            if ch.connecting is not None and not ch.connecting.done():
                ch.connecting.cancel()
            if ch.link is not None:
                ch.link.close()
                ch.link = None

    # ---- expiry keeper ------------------------------------------------------------

    async def keep_holds(self, interval: float = 0.5) -> None:
        """Wake routes whose earliest hold is overdue, even if their actor is down.

        The actor expires its own holds while it runs; this covers an actor that was
        deactivated, crashed or had its whole server down when a deadline passed.
        Several front ends doing it at once is harmless: a sweep is idempotent.
        """
        while True:
            _stop_if_cancelled()
            await asyncio.sleep(interval)
            try:
                due = await self.client.zrangebyscore(keys.HOLDS, "-inf", time.time(), 0, 100)
                for raw in due:
                    route_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                    if not await self.client.hexists(keys.ROUTES, route_id):
                        # a holds entry for a route whose definition is gone (a wiped
                        # database): activating an actor for it could only fail
                        await self.client.zrem(keys.HOLDS, route_id)
                        continue
                    # a grace second: a live actor's own sweeper normally gets there first
                    score = await self.client.zscore(keys.HOLDS, route_id)
                    if score is not None and score > time.time() - 1.0:
                        continue
                    handle = await self._handle(route_id)
                    try:
                        # bounded: one frozen actor must not stop expiry for every route
                        async with asyncio.timeout(_SWEEP_TIMEOUT):
                            await handle.sweep.remote()
                    except rex.ActorDiedError:
                        self.directory.forget(route_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep keeping: Redis or Ray may come back
                log.warning("hold keeper pass failed", error=repr(exc))

    def queue_depth(self) -> int:
        """Requests waiting across all routes (for metrics)."""
        return sum(len(ch.queue) for ch in self._channels.values())

    async def ready(self) -> dict[str, str]:
        """Readiness of Redis and Ray."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.client.ping(), 2)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failing: {type(exc).__name__}"
        try:
            ok = ray.is_initialized() and await self._ray_check.answers()
            checks["ray"] = "ok" if ok else "failing: not connected"
        except Exception as exc:
            checks["ray"] = f"failing: {type(exc).__name__}"
        return checks


def _stop_if_cancelled() -> None:
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

"""The front end's side of the route actors: per-route batching and read caches.

Requests for one route that arrive while a call to its actor is in flight
queue up and go together in the next call: no timer, so batches grow with
load by themselves. Each reply carries the route's fresh availability, which
replaces the front end's snapshot (a front end reads its own writes).
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

from actors import keys, routes_store
from actors.actor import Reply
from actors.directory import Directory
from actors.errors import Unavailable
from actors.messages import Book, Command, encode
from actors.route import RouteDef
from actors.views import Result, RouteView
from server import metrics
from server.problems import Problem
from server.settings import Settings

log = structlog.get_logger("ticketd.gateway")
_reply = msgspec.msgpack.Decoder(Reply)


class Channel:
    """One route as this front end sees it: definition, batch queue, availability."""

    __slots__ = (
        "classes",
        "down",
        "fetched",
        "inflight",
        "matrix",
        "queue",
        "refreshing",
        "route",
        "station_index",
        "version",
        "view",
    )

    def __init__(self, route: RouteDef) -> None:
        self.route = route
        self.view = RouteView(route)
        self.station_index = {name: i for i, name in enumerate(route.stations)}
        self.classes = route.classes()
        self.queue: list[tuple[Command, asyncio.Future[Result]]] = []
        self.inflight = 0  # calls to the route's actor in flight from this front end
        self.matrix: dict[str, list[int]] | None = None
        self.version = -1
        self.fetched = 0.0
        self.refreshing: asyncio.Task[None] | None = None
        #: the last call found the actor unreachable; cleared by the next call that succeeds
        self.down = False

    def take(self, reply: Reply) -> None:
        """Adopt a reply's availability unless we already hold a newer one."""
        if reply.version >= self.version:
            self.version, self.matrix, self.fetched = reply.version, reply.matrix, time.monotonic()


class Gateway:
    """Routes commands to actors: batching, retries on actor death, caches."""

    def __init__(self, settings: Settings, client: aredis.Redis, directory: Directory) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self._channels: dict[str, Channel] = {}
        self._loading: dict[str, asyncio.Task[Channel]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- routes -------------------------------------------------------------------

    async def channel(self, route_id: str) -> Channel:
        """The route's channel; Problem 404 if no such route exists."""
        ch = self._channels.get(route_id)
        if ch is not None:
            return ch
        # a cold route in a rush: one Redis read however many requests wait for it (a read
        # each would exhaust the connection pool); shielded, so one waiter giving up does
        # not cancel the read the others wait for
        task = self._loading.get(route_id)
        if task is None:
            task = asyncio.create_task(self._load(route_id))
            self._loading[route_id] = task
            task.add_done_callback(lambda done: self._loading.pop(route_id, None))
        return await asyncio.shield(task)

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
        """Record a booking key; True if no front end had recorded it before."""
        marker = keys.idem_marker(route_id, user, key)
        try:
            return bool(await self.client.set(marker, b"1", nx=True, ex=keys.IDEM_MARKER_TTL))
        except (redis.RedisError, OSError):
            raise self._unavailable(route_id) from None

    async def _mark_keys(self, route_id: str, commands: list[Command]) -> None:
        """Record every booking key of a batch before its actor can apply it (one trip)."""
        books = [c for c in commands if isinstance(c, Book)]
        if not books:
            return
        pipe = self.client.pipeline(transaction=False)
        for c in books:
            pipe.set(keys.idem_marker(route_id, c.user, c.key), b"1", nx=True,
                     ex=keys.IDEM_MARKER_TTL)  # fmt: skip
        try:
            await pipe.execute()
        except (redis.RedisError, OSError):
            # without the marks a retry elsewhere could be told "sold out" for a booking
            # that exists; the actor could not journal now anyway
            raise self._unavailable(route_id) from None

    async def _send(self, ch: Channel, commands: list[Command]) -> list[Result]:
        route_id = ch.route.route_id
        await self._mark_keys(route_id, commands)
        payload = encode(commands)
        for attempt in (1, 2):
            handle = await self._handle(route_id)
            started = time.perf_counter()
            try:
                raw = await handle.submit.remote(payload)
            except rex.ActorUnavailableError:
                # unreachable (e.g. its node died) and Ray's own retries are used up
                ch.down = True
                raise self._unavailable(route_id) from None
            except rex.ActorDiedError:
                # gone for good (idle deactivation, fenced): a fresh activation takes over.
                # Safe to resend: every command is idempotent.
                self.directory.forget(route_id)
                if attempt == 2:
                    raise self._unavailable(route_id) from None
                continue
            except rex.RayError as exc:
                log.warning("actor call failed", route_id=route_id, error=repr(exc))
                ch.down = True
                raise self._unavailable(route_id) from None
            finally:
                metrics.ACTOR_CALL.observe(time.perf_counter() - started)
            ch.down = False
            reply = _reply.decode(raw)
            ch.take(reply)
            return reply.results
        raise self._unavailable(route_id)

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
        route_id = ch.route.route_id
        for attempt in (1, 2):
            handle = await self._handle(route_id)
            try:
                raw = await handle.availability.remote()
            except rex.ActorDiedError:
                self.directory.forget(route_id)
                if attempt == 2:
                    raise self._unavailable(route_id) from None
                continue
            except rex.RayError:
                if ch.matrix is not None:
                    return  # serve the last known figures rather than fail a read
                raise self._unavailable(route_id) from None
            ch.take(_reply.decode(raw))
            return

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
            ok = ray.is_initialized() and await asyncio.wait_for(
                asyncio.to_thread(ray.cluster_resources), 5
            )
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

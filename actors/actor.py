"""RouteActor: the Ray actor that owns one route's seat map.

A thin shell around the pure domain: decide a batch (no await), persist its
events in one fenced Redis append, only then answer. Calls that arrive while
a write is in flight wait and go together in the next write (group commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import time
from typing import Any

import msgspec
import ray
import redis
import redis.asyncio as aredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from actors import journal, routes_store
from actors.config import ActorConfig
from actors.decide import Policy, run_batch
from actors.errors import Unavailable
from actors.messages import Command, Event, Sweep, decode_commands, encode
from actors.state import RouteState, apply, from_snapshot, to_snapshot
from actors.views import Record, Result, availability_matrix, record

log = structlog.get_logger("ticketd.actor")

#: how long a fenced actor keeps answering "unavailable" before it stops itself
_FENCED_GRACE_SECONDS = 1.0


class Reply(msgspec.Struct, array_like=True):
    """An actor's answer to one call: one result per command, plus fresh availability."""

    results: list[Result]
    version: int
    matrix: dict[str, list[int]]


def recover(client: redis.Redis, route_id: str) -> tuple[RouteState, str]:
    """Latest snapshot plus the journal tail: the state before the crash, exactly."""
    route = routes_store.fetch_sync(client, route_id)
    stored = journal.load(client, route_id)
    if stored.snapshot is not None:
        try:
            state = from_snapshot(stored.snapshot)
        except msgspec.DecodeError as exc:
            raise journal.JournalCorrupt(f"snapshot of {route_id} is corrupt: {exc}") from exc
    else:
        state = RouteState.empty(route)
    last_id = stored.snapshot_last_id
    for entry_id, events in stored.events():
        for event in events:
            apply(state, event)
        last_id = entry_id
    return state, last_id


class RouteActor:
    """Serializes every change to one route's seats; Redis is the durable backstop."""

    def __init__(self, route_id: str, config: ActorConfig) -> None:
        self.route_id = route_id
        self.config = config
        self.policy = Policy(config.hold_seconds, config.user_cap)
        # recovery is synchronous on purpose: the actor serves nothing until it is done
        sync = redis.Redis.from_url(config.redis_url, socket_timeout=10, socket_connect_timeout=5)
        try:
            self.epoch = journal.activate(sync, route_id)
            started = time.perf_counter()
            self.state, self.last_id = recover(sync, route_id)
            self._publish_availability(sync)
        finally:
            sync.close()
        self.recovery_seconds = time.perf_counter() - started
        self.since_snapshot = 0
        self._pending: list[tuple[list[Command], asyncio.Future[bytes]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._journal: journal.Journal | None = None
        self._stale = False  # memory may hold events Redis did not confirm: reload first
        self._fenced = False
        self._last_call = time.monotonic()
        self._batches = 0
        self._matrix = availability_matrix(self.state)
        log.info(
            "route actor activated",
            route_id=route_id,
            epoch=self.epoch,
            events=self.state.events_applied,
            recovery_ms=round(self.recovery_seconds * 1000, 1),
        )

    @property
    def _version(self) -> int:
        # monotonic across activations (the epoch only grows), so a front end can always
        # tell the newer of two availability matrices
        return self.epoch << 32 | self._batches

    # ---- Ray-facing methods -------------------------------------------------------

    async def submit(self, payload: bytes) -> bytes:
        """Run a batch of commands (msgpack list); answers a msgpack Reply."""
        self._start_tasks()
        self._last_call = time.monotonic()
        return await self._enqueue(decode_commands(payload))

    async def _enqueue(self, commands: list[Command]) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending.append((commands, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def info(self) -> dict[str, Any]:
        """Operator view: epoch, counts, recovery time, where it runs."""
        self._start_tasks()
        return {
            "route_id": self.route_id,
            "epoch": self.epoch,
            "events_applied": self.state.events_applied,
            "bookings": len(self.state.bookings),
            "waitlist": len(self.state.waitlist),
            "recovery_seconds": self.recovery_seconds,
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "fenced": self._fenced,
        }

    async def sweep(self) -> bytes:
        """Expire due holds now (front ends call this for routes with overdue holds)."""
        self._start_tasks()
        return await self._enqueue([])

    async def availability(self) -> bytes:
        """The latest durable availability matrix, for front-end read caches."""
        self._start_tasks()
        return encode(Reply([], self._version, self._matrix))

    # ---- the serial write path ----------------------------------------------------

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                payloads = await self._run(batch)
            except Exception as exc:
                # e.g. a reload that meets a corrupt journal: the callers must hear of it,
                # not wait forever on futures nobody resolves. Memory may be half-applied,
                # so it is rebuilt from Redis before the next batch.
                self._stale = True
                log.exception("batch failed", route_id=self.route_id)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), reply in zip(batch, payloads, strict=True):
                if not future.done():
                    future.set_result(reply)
            # after the replies, never before them: a snapshot costs O(bookings). Taking
            # one only every max(N, bookings) events keeps that O(1) per event.
            if self.since_snapshot >= max(self.config.snapshot_every, len(self.state.bookings)):
                await self._snapshot()
            if self._fenced:
                # stop once these "unavailable" replies are on their way: killing at once
                # races Ray sending them, and the callers would see the actor die instead.
                # Until then _fenced refuses every write.
                asyncio.get_running_loop().call_later(_FENCED_GRACE_SECONDS, self._stop_self)
                return

    async def _run(self, batch: list[tuple[list[Command], asyncio.Future[bytes]]]) -> list[bytes]:
        sizes = [len(commands) for commands, _ in batch]
        if self._fenced:
            return self._unavailable(sizes, "This route moved to a newer activation; retry.")
        if self._stale and not await self._reload():
            return self._unavailable(sizes, "Storage is unreachable; retry with the same key.")
        commands: list[Command] = [Sweep()]
        for cmds, _ in batch:
            commands.extend(cmds)
        # decide and apply the whole batch with no await in between: the actor stays serial
        events, results = run_batch(self.state, commands, self.policy, time.time())
        if events:
            matrix, stored, records = self._buyer_reads(events)
            try:
                append = self._get_journal().append(
                    encode(events), self._next_deadline(), stored, records
                )
                # asyncio.timeout, not wait_for: no extra task per write on the hot path
                async with asyncio.timeout(self.config.write_timeout):
                    self.last_id = await append
            except journal.Fenced:
                self._fenced = True
                self._stale = True
                log.warning("route actor fenced", route_id=self.route_id, epoch=self.epoch)
                return self._unavailable(sizes, "This route moved to a newer activation; retry.")
            except (redis.RedisError, OSError, TimeoutError) as exc:
                # the write may or may not have landed: memory is rebuilt from Redis before
                # the next batch, so it never disagrees with the journal
                self._stale = True
                log.warning("journal append failed", route_id=self.route_id, error=repr(exc))
                return self._unavailable(sizes, "Storage did not confirm; retry with the same key.")
            self.since_snapshot += len(events)
            self._batches += 1
            self._matrix = matrix
        out: list[bytes] = []
        at = 1  # results[0] answers the internal Sweep
        for size in sizes:
            out.append(encode(Reply(results[at : at + size], self._version, self._matrix)))
            at += size
        return out

    def _buyer_reads(self, events: list[Event]) -> tuple[dict[str, list[int]], bytes, list[Record]]:
        """What a batch's append also stores for reads that wake no actor: the availability
        after it (as the reply will carry it) and the latest record of each booking it
        changed (for its user's list)."""
        matrix = availability_matrix(self.state)
        stored = journal.encode_availability(self.epoch << 32 | (self._batches + 1), matrix)
        changed = dict.fromkeys(e.booking_id for e in events)
        return matrix, stored, [record(self.state.bookings[bid]) for bid in changed]

    def _publish_availability(self, client: redis.Redis) -> None:
        """Store the recovered availability at once: a route journalled before stored
        availability existed (or whose last write failed) then has it too."""
        # version epoch << 32: newer than anything an earlier activation stored
        stored = journal.encode_availability(self.epoch << 32, availability_matrix(self.state))
        try:
            journal.publish_availability(client, self.route_id, self.epoch, stored)
        except journal.Fenced:
            # a newer activation already exists: this one is fenced at its first append
            log.warning("route actor fenced at activation", route_id=self.route_id)

    def _next_deadline(self) -> float | None:
        """Earliest deadline of a live hold; drops stale heap entries on the way."""
        holds, bookings = self.state.holds, self.state.bookings
        while holds:
            deadline, bid = holds[0]
            b = bookings[bid]
            if b.status == "held" and b.hold_expires_at == deadline:
                return deadline
            heapq.heappop(holds)
        return None

    def _unavailable(self, sizes: list[int], detail: str) -> list[bytes]:
        err = Result(False, error=Unavailable(detail, route_id=self.route_id).to_dict())
        return [encode(Reply([err] * size, self._version, self._matrix)) for size in sizes]

    async def _reload(self) -> bool:
        """Rebuild memory from Redis after an unconfirmed write; False if Redis is down."""
        try:
            sync = redis.Redis.from_url(self.config.redis_url, socket_timeout=2)
            try:
                state, last_id = await asyncio.to_thread(recover, sync, self.route_id)
            finally:
                sync.close()
        except (redis.RedisError, OSError) as exc:
            log.warning("reload failed", route_id=self.route_id, error=repr(exc))
            return False
        self.state, self.last_id, self._stale = state, last_id, False
        self._batches += 1
        self._matrix = availability_matrix(self.state)
        log.info("route state reloaded", route_id=self.route_id, events=state.events_applied)
        return True

    async def _snapshot(self) -> None:
        data = to_snapshot(self.state)  # taken between batches: consistent with last_id
        try:
            await self._get_journal().write_snapshot(data, self.last_id)
            self.since_snapshot = 0
        except journal.Fenced:
            self._fenced = True
        except (redis.RedisError, OSError) as exc:
            # not fatal: the journal still holds everything; try again after more events
            log.warning("snapshot failed", route_id=self.route_id, error=repr(exc))

    def _get_journal(self) -> journal.Journal:
        if self._journal is None:
            # never retry an append inside the client: a lost reply to a write that landed
            # would journal the batch twice. The batch answers "unavailable" instead, and the
            # client retries with its idempotency key against the reloaded state.
            client = aredis.Redis.from_url(
                self.config.redis_url,
                socket_timeout=10,
                socket_connect_timeout=5,
                retry=Retry(NoBackoff(), 0),
            )
            self._journal = journal.Journal(client, self.route_id, self.epoch)
        return self._journal

    # ---- background: expiry and idle deactivation -----------------------------------

    def _start_tasks(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop())

    async def _sweep_loop(self) -> None:
        while not self._fenced:
            await asyncio.sleep(self.config.sweep_interval)
            holds = self.state.holds
            if holds and holds[0][0] <= time.time() and not self._pending:
                # an empty batch still runs the Sweep that every batch starts with
                with contextlib.suppress(Exception):
                    await self._enqueue([])
            idle = self.config.idle_seconds
            if idle and time.monotonic() - self._last_call > idle and self._can_deactivate():
                await self._deactivate()
                return

    def _can_deactivate(self) -> bool:
        # live holds need no actor: the front ends' keeper reactivates the route when the
        # earliest one falls due (keys.HOLDS). No batch may be mid-write either (e.g. a
        # keeper's sweep()): its events are in memory but its entry id is not in last_id
        # yet, so a snapshot now would make recovery apply them twice.
        return not self._pending and (self._writer is None or self._writer.done())

    async def _deactivate(self) -> None:
        if not self._stale and self.since_snapshot:
            await self._snapshot()
        log.info("route actor deactivating (idle)", route_id=self.route_id)
        self._stop_self()

    def _stop_self(self) -> None:
        # an intentional exit: Ray must not restart a fenced or idle actor
        with contextlib.suppress(Exception):
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

"""RouteCore: everything one route's actor does, the data plane included.

Decide a batch (no await), persist its events in one fenced Redis append, only then
answer; requests that arrive while a write is in flight go in the next write (group
commit). Commands arrive over the actor's own socket (`actors/plane/listener.py`); Ray
calls (`actors/actor.py`) are the control plane. Not the Ray actor class: Ray wraps its
every method in a tracing shim (a call and a check per call, a frame per resumption).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from functools import partial
from typing import Any

import ray
import redis
import structlog

from actors import heap, placement, writes, zombie
from actors.config import ActorConfig
from actors.domain.decide import Policy, run_batch
from actors.domain.messages import Command
from actors.domain.state import to_snapshot
from actors.domain.views import Reply, Result
from actors.plane.listener import Connection, PlaneServer, Rows
from actors.replies import MOVED, NO_STORAGE, UNCONFIRMED, Sink, deliver, fail, unavailable
from actors.seat_reads import SeatReads
from actors.storage import journal, topology
from actors.storage.formats import availability_version
from actors.storage.recovery import activation, publish_recovered, recover
from actors.writes import Ahead, Batch, Refused, Write

__all__ = ["Reply", "RouteCore"]

log = structlog.get_logger("ticketd.actor")

#: how long a fenced actor keeps answering "unavailable" before it stops itself
_FENCED_GRACE_SECONDS = 1.0
#: how long a stopping actor gives its closed connections to reach the front ends
_CLOSE_SECONDS = 0.2


class RouteCore:
    """Serializes every change to one route's seats; Redis is the durable backstop."""

    def __init__(self, route_id: str, config: ActorConfig) -> None:
        self.route_id, self.config = route_id, config
        config.apply_niceness()
        topology.adopt(config.redis_url, config.redis_nodes)
        self.policy = Policy(config.hold_seconds, config.user_cap)
        # recovery is synchronous on purpose: the actor serves nothing until it is done
        sync = topology.sync_client(config.redis_url, socket_timeout=10, socket_connect_timeout=5)
        node_id, started = ray.get_runtime_context().get_node_id(), time.perf_counter()
        try:
            self.epoch, self.state, self.last_id = activation(
                sync, route_id, config.redis_replicas, partial(placement.record, node_id=node_id)
            )
        finally:
            sync.close()
        self.recovery_seconds = time.perf_counter() - started
        self.since_snapshot = 0
        self._pending: list[tuple[list[Command], Sink]] = []
        self._writer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None  # see actors/zombie.py
        self._journal: journal.Journal | None = None
        self._plane: asyncio.Task[PlaneServer] | None = None
        self._snapshotting: asyncio.Task[None] | None = None
        self._stale = False  # memory may hold events Redis did not confirm: reload first
        self._fenced = False
        #: deactivating: new requests are answered GONE (not run) and go to the successor
        self._closing = False
        self._last_call = time.monotonic()
        self._batches = self._commands = 0
        self._append_seconds = 0.0  # spent waiting for Redis to confirm appends
        #: bumped by every reload: a reloaded inventory counts its versions from 0 again
        self._generation = 0
        #: per class, the availability row as Redis has it (never a row of an unconfirmed batch),
        #: tagged (generation, inventory version) so a connection can tell news
        self._durable: Rows = writes.rows_of(self.state, self._generation, {})
        #: the append in flight, and the requests decided on top of it (actors/writes.py)
        self._writing: Write | None = None
        self._ahead: Ahead | None = None
        self._seat_reads = SeatReads()  # the web console's seat map (actors/seat_reads.py)
        self._heap = heap.keep(config.gc_freeze_seconds)  # no long GC pauses in batches
        log.info(
            "route actor activated",
            route_id=route_id,
            epoch=self.epoch,
            events=self.state.events_applied,
            recovery_ms=round(self.recovery_seconds * 1000, 1),
        )

    @property
    def _version(self) -> int:
        # monotonic across activations: a front end tells the newer matrix
        return availability_version(self.epoch, self._batches)

    # ---- control plane (what the Ray actor's methods answer) -------------------------

    async def address(self) -> dict[str, Any]:
        """Where this activation's data plane listens (started on first ask)."""
        if self._closing:
            # this activation is on its way out: answer only with its death, which tells
            # the caller (ActorDiedError) to activate a successor
            await asyncio.Event().wait()
        self._start_tasks()
        if self._plane is None:
            # on the node's address as Ray knows it: where other nodes' front ends can reach
            # us (front ends on this node use the Unix socket)
            host = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
            self._plane = asyncio.create_task(
                PlaneServer.start(self, self.config.plane_secret, host, self.route_id)
            )
        server = await asyncio.shield(self._plane)
        where = server.address
        return {
            "host": where.host,
            "port": where.port,
            "unix": where.unix,
            "node_id": ray.get_runtime_context().get_node_id(),
            "epoch": self.epoch,
            "pid": os.getpid(),
        }

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
            "batches": self._batches,
            "commands": self._commands,
            "append_seconds": round(self._append_seconds, 6),
            "idle_seconds": round(time.monotonic() - self._last_call, 3),
            "heap": None if self._heap is None else self._heap.figures(),
        }

    async def sweep(self) -> bytes:
        """Expire due holds now (front ends call this for routes with overdue holds)."""
        self._start_tasks()
        return await self._enqueue([])

    # ---- data plane (called by plane.listener.Connection, on this loop) -------------

    def plane_submit(self, commands: list[Command], conn: Connection, req_id: int) -> None:
        """Queue a batch from a front end; the answer goes back on its connection."""
        if self._closing:
            conn.gone(req_id)
            return
        self._start_tasks()
        self._last_call = time.monotonic()
        self._queue(commands, (conn, req_id))

    def plane_availability(self, conn: Connection, req_id: int) -> None:
        """Answer at once with the durable availability (rows the peer lacks)."""
        conn.reply(req_id, [], self._version, self._durable)

    def plane_seats(self, conn: Connection, req_id: int) -> None:
        """Answer with the seat map as Redis holds it: now, or right after the batch
        being written (its events are in memory, not confirmed yet)."""
        self._seat_reads.ask(conn, req_id)
        if self._writer is None or self._writer.done():
            self._seat_reads.answer(self.state, self._version, self._stale)

    # ---- the serial write path ----------------------------------------------------

    async def _enqueue(self, commands: list[Command]) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queue(commands, future)
        return await future

    def _queue(self, commands: list[Command], sink: Sink) -> None:
        if self._writing is not None and not (self._stale or self._fenced or self._closing):
            # an append is in flight: decide these now, on top of it, into the batch that
            # goes next (actors/writes.py); no await between deciding and applying
            if self._ahead is None:
                self._ahead = Ahead()
            self._decide_into(self._ahead, [(commands, sink)])
            return
        self._pending.append((commands, sink))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        write: Write | None = None
        while True:
            if write is None:
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
                try:
                    if self._fenced or (self._stale and not await self._reload()):
                        self._refuse(batch, MOVED if self._fenced else NO_STORAGE)
                        self._seat_reads.answer(self.state, self._version, stale=True)
                        continue
                    ahead = Ahead()
                    self._decide_into(ahead, batch)
                    write = self._writing = self._send(ahead)
                except Exception as exc:
                    self._failed(batch, exc)
                    continue
            answers: list[list[Result]] | None = None
            try:
                answers = await self._confirm(write)
            except Exception as exc:
                self._failed(write.ahead.batch, exc)
            done, write = write, None
            # the next batch goes to Redis before this one's replies are encoded
            following, self._ahead = self._ahead, None
            if following is not None:
                if self._stale or self._fenced:
                    # decided on top of a write that failed: never sent, refused whole
                    self._refuse(following.batch, MOVED if self._fenced else UNCONFIRMED)
                else:
                    write = self._send(following)
            self._writing = write
            # no await since the write was confirmed: these replies see what Redis holds
            if answers is not None:
                deliver(done.ahead.batch, answers, self._version, self._durable)
            self._seat_reads.hand_out(done.readers, done.seat_map, self._stale)
            if write is None:  # nothing decided beyond the confirmed state
                self._seat_reads.answer(self.state, self._version, self._stale)
            if self._fenced:
                # stop once these "unavailable" replies are on their way (killing at once races
                # the sockets, and callers would see the actor die); _fenced refuses writes.
                asyncio.get_running_loop().call_later(_FENCED_GRACE_SECONDS, self._stop_self)
                return

    def _failed(self, batch: Batch, exc: Exception) -> None:
        # e.g. a reload meeting a corrupt journal: callers hear of it, never wait on futures
        # nobody resolves; memory may be half-applied: rebuilt from Redis before next batch
        self._stale = True
        log.exception("batch failed", route_id=self.route_id)
        fail(batch, exc)
        self._seat_reads.answer(self.state, self._version, stale=True)

    def _refuse(self, batch: Batch, why: str) -> None:
        sizes = [len(commands) for commands, _ in batch]
        deliver(batch, unavailable(self.route_id, sizes, why), self._version, self._durable)

    def _decide_into(self, ahead: Ahead, batch: Batch) -> None:
        """Decide and apply requests in memory (never awaiting), adding them to `ahead`."""
        commands = writes.commands_of(batch)
        self._commands += len(commands) - 1
        events, results = run_batch(self.state, commands, self.policy, time.time())
        ahead.batch.extend(batch)
        ahead.answers.extend(writes.split(results, batch))
        ahead.events.extend(events)

    def _send(self, ahead: Ahead) -> Write:
        """Start a batch's append (if it journals anything) and take, with memory exactly
        the journal plus this batch, what its confirmation hands out."""
        write = Write(ahead, None, writes.rows_of(self.state, self._generation, self._durable))
        if ahead.events:
            # taken now, when memory is exactly the journal plus this batch
            version = availability_version(self.epoch, self._batches + 1)
            batch = journal.batch_write(self.route_id, ahead.events, self.state, version)
            # asyncio.timeout, not wait_for: no extra task per write beyond this one
            write.append = asyncio.create_task(
                writes.append_within(self.config.write_timeout, self._get_journal(), batch)
            )
            due = self.since_snapshot + len(ahead.events)
            idle = self._snapshotting is None or self._snapshotting.done()
            if idle and due >= max(self.config.snapshot_every, len(self.state.bookings)):
                # after the replies' work, O(bookings) every max(N, bookings) events: O(1)
                # per event; encoded now, when memory matches this batch's entry exactly
                write.snapshot = to_snapshot(self.state)
        if self._seat_reads.waiting:
            version = self._version + bool(ahead.events)
            write.readers, write.seat_map = self._seat_reads.take(self.state, version)
        return write

    async def _confirm(self, write: Write) -> list[list[Result]]:
        """Wait for a batch's append; its answers, or "unavailable" for all of it."""
        ahead = write.ahead
        if write.append is None:
            return ahead.answers  # journals nothing (refusals, reads): true once sent
        got = await writes.landed(write.append, self.route_id, self.epoch)
        self._append_seconds += time.perf_counter() - write.sent_at
        if isinstance(got, Refused):
            # memory holds the batch Redis did not take: rebuilt before the next one
            self._stale = True
            self._fenced = self._fenced or got.fenced
            return unavailable(self.route_id, [len(c) for c, _ in ahead.batch], got.detail)
        self.last_id = got
        self.since_snapshot += len(ahead.events)
        self._batches += 1
        self._durable = write.rows
        if write.snapshot is not None:
            covered, self.since_snapshot = self.since_snapshot, 0
            self._snapshotting = asyncio.create_task(
                self._write_snapshot(write.snapshot, self.last_id, covered)
            )
        return ahead.answers

    async def _reload(self) -> bool:
        """Rebuild memory from Redis after an unconfirmed write; False if Redis is down."""
        try:
            sync = topology.sync_client(self.config.redis_url, socket_timeout=2)
            try:
                state, last_id = await asyncio.to_thread(recover, sync, self.route_id)
                await asyncio.to_thread(publish_recovered, sync, self.route_id, self.epoch, state)
            finally:
                sync.close()
        except (redis.RedisError, OSError) as exc:
            log.warning("reload failed", route_id=self.route_id, error=repr(exc))
            return False
        self.state, self.last_id, self._stale = state, last_id, False
        self._batches, self._generation = self._batches + 1, self._generation + 1
        self._durable = writes.rows_of(self.state, self._generation, self._durable)
        log.info("route state reloaded", route_id=self.route_id, events=state.events_applied)
        return True

    async def _write_snapshot(self, data: bytes, last_id: str, covered: int) -> None:
        try:
            await self._get_journal().write_snapshot(data, last_id)
        except journal.Fenced:
            self._fenced = True
        except (redis.RedisError, OSError) as exc:
            # not fatal: the journal still holds everything; try again after more events
            self.since_snapshot += covered
            log.warning("snapshot failed", route_id=self.route_id, error=repr(exc))

    def _get_journal(self) -> journal.Journal:
        if self._journal is None:
            self._journal = journal.Journal.open(
                self.config.redis_url, self.route_id, self.epoch, self.config.redis_replicas
            )
        return self._journal

    # ---- background: expiry and idle deactivation -----------------------------------

    def _start_tasks(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_loop())
            node_id = ray.get_runtime_context().get_node_id()
            client = self._get_journal().client
            self._watch = asyncio.create_task(
                zombie.exit_when_superseded(client, self.route_id, self.epoch, node_id)
            )

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
        # live holds need no actor: the front ends' keeper reactivates the route when the earliest
        # one falls due (keys.HOLDS). No batch may be mid-write either (e.g. a keeper's sweep()):
        # its events are in memory but its entry id is not in last_id yet, so a snapshot now would
        # make recovery apply them twice.
        return not self._pending and (self._writer is None or self._writer.done())

    async def _deactivate(self) -> None:
        # from here on nothing new is accepted (the caller checked nothing is pending, with
        # no await since): a request that comes now is answered GONE and resent elsewhere
        self._closing = True
        if self._snapshotting is not None:
            await asyncio.wait({self._snapshotting})
        if not self._stale and self.since_snapshot:
            covered, self.since_snapshot = self.since_snapshot, 0
            await self._write_snapshot(to_snapshot(self.state), self.last_id, covered)
        log.info("route actor deactivating (idle)", route_id=self.route_id)
        self._stop_self()

    def _stop_self(self) -> None:
        # an intentional exit: Ray must not restart a fenced or idle actor
        self._closing = True
        if self._plane is not None and self._plane.done() and not self._plane.exception():
            # front ends see their connections close now, not when the process is gone
            self._plane.result().close()
        # the kill waits a moment: closing a transport takes a loop turn, and Ray frees the actor's
        # name before the process is gone, so a front end that looked the route up would otherwise
        # still find the old connection open and lose a request on it
        asyncio.get_running_loop().call_later(_CLOSE_SECONDS, self._kill_self)

    @staticmethod
    def _kill_self() -> None:
        with contextlib.suppress(Exception):
            ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

"""Helpers for the route-actor tests: routes, commands, calls, process kills and audits.

Everything here talks to a real Ray and a real Redis; nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import msgspec
import ray
import redis
import redis.asyncio
from ray.exceptions import RayActorError

from actors import directory
from actors.actor import Reply
from actors.config import ActorConfig
from actors.domain.messages import Book, Command, ListBookings, Passenger, encode
from actors.domain.route import RouteDef, trip_mask
from actors.domain.state import RouteState
from actors.domain.views import Record, Result
from actors.plane import protocol
from actors.storage import routes_store
from actors.storage.recovery import recover
from server.dispatch.link import Link

STATIONS = ["S0", "S1", "S2", "S3", "S4"]
LIVE_SEATED = frozenset({"held", "confirmed"})
#: the data-plane secret of every actor the tests create
PLANE_SECRET = "test-plane-secret-0123456789abcdef-0123"

_reply = msgspec.msgpack.Decoder(Reply)


def actor_config(redis_url: str, **overrides: Any) -> ActorConfig:
    """An actor configuration for the tests (with the tests' data-plane secret)."""
    return ActorConfig(redis_url, plane_secret=PLANE_SECRET, **overrides)


class PlaneClient:
    """A test's data-plane connection to one actor, reconnected through Ray after a
    restart, keeping the merged availability matrix as a front end does."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.link: Link | None = None
        self.matrix: dict[str, list[int]] = {}

    async def connect(self, timeout: float = 60.0) -> Link:
        """The open link, reconnecting (and waiting out a restart) if needed."""
        if self.link is not None and self.link.open:
            return self.link
        where = await asyncio.wait_for(self.handle.address.remote(), timeout)
        self.link = await Link.connect(where, PLANE_SECRET, unix=True, label="test")
        self.matrix = {}
        return self.link

    async def submit(self, commands: Sequence[Command], timeout: float = 60.0) -> Reply:
        """One batch over the data plane; the Reply with the full (merged) matrix."""
        link = await self.connect(timeout)
        raw = await asyncio.wait_for(
            link.request(protocol.OP_SUBMIT, encode(list(commands))), timeout
        )
        reply = _reply.decode(raw)
        self.matrix.update(reply.matrix)
        reply.matrix = dict(self.matrix)
        return reply

    def close(self) -> None:
        if self.link is not None:
            self.link.close()


_clients: dict[Any, PlaneClient] = {}


def plane_client(handle: Any) -> PlaneClient:
    """The shared data-plane client of an actor handle."""
    key = handle._actor_id
    client = _clients.get(key)
    if client is None or client.handle is not handle:
        client = _clients[key] = PlaneClient(handle)
    return client


def close_plane_clients() -> None:
    """Close every test data-plane connection (end of a test)."""
    for client in _clients.values():
        client.close()
    _clients.clear()


def route_def(route_id: str, rows: int = 3, letters: str = "AB") -> RouteDef:
    """A one-coach 'second' class route with stations S0…S4 under the given id."""
    train, date = route_id.split("-")
    return RouteDef.from_dict(
        {
            "train": train,
            "date": f"{date[:4]}-{date[4:6]}-{date[6:]}",
            "stations": STATIONS,
            "coaches": [{"number": "01", "class": "second", "rows": rows, "letters": letters}],
        }
    )


async def create_route(url: str, route: RouteDef) -> RouteDef:
    """Store the route definition in the Redis at url (as an admin's POST would)."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        await routes_store.create(client, route)
    finally:
        await client.aclose()
    return route


def book(tag: str, i: int = 0, j: int = 4, passengers: int = 1) -> Book:
    """A booking request whose id, user, key and passengers all derive from tag.

    Re-sending `book(tag, …)` is the client's idempotent retry: same key, same body.
    """
    people = [Passenger(f"name-{tag}-{n}", f"pid-{tag}-{n}") for n in range(passengers)]
    return Book(
        f"bk-{tag}", f"user-{tag}", f"key-{tag}", f"fp-{tag}-{i}-{j}",
        STATIONS[i], STATIONS[j], "second", people,
    )  # fmt: skip


def trips(count: int) -> list[tuple[int, int]]:
    """A deterministic mix of overlapping trips over S0…S4."""
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 5)]
    return [pairs[(k * 7) % len(pairs)] for k in range(count)]


@contextlib.asynccontextmanager
async def route_actor(route_id: str, config: ActorConfig) -> AsyncIterator[Any]:
    """The route's production actor (named, detached, restartable), killed for good after."""
    handle = directory.get_or_create(route_id, config)
    try:
        yield handle
    finally:
        close_plane_clients()
        ray.kill(handle, no_restart=True)


def decode_reply(raw: object) -> Reply:
    """An actor's msgpack answer, decoded."""
    assert isinstance(raw, bytes), raw
    return _reply.decode(raw)


async def submit(handle: Any, commands: Sequence[Command], timeout: float = 60.0) -> Reply:
    """One batch over the actor's data plane; the decoded Reply (full matrix)."""
    return await plane_client(handle).submit(commands, timeout)


async def results(handle: Any, commands: Sequence[Command]) -> list[Result]:
    """One actor call; its per-command results."""
    return (await submit(handle, commands)).results


async def bookings(handle: Any) -> dict[str, Record]:
    """Every booking the actor holds in memory, by id (the admin list)."""
    (result,) = await results(handle, [ListBookings()])
    assert result.ok and result.records is not None
    return {r.booking_id: r for r in result.records}


async def actor_pid(handle: Any) -> int:
    """Pid of the process the actor runs in now."""
    info: dict[str, Any] = await asyncio.wait_for(handle.info.remote(), 60)
    return int(info["pid"])


def sigkill(pid: int) -> None:
    """Kill a process as a crash would: no cleanup, no goodbye."""
    os.kill(pid, signal.SIGKILL)


async def wait_for_new_process(handle: Any, old_pid: int, timeout: float = 30.0) -> int:
    """Block until Ray has restarted the actor in a process other than old_pid."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(RayActorError):
            pid = await actor_pid(handle)
            if pid != old_pid:
                return pid
        assert time.monotonic() < deadline, f"actor not restarted within {timeout:g} s"
        await asyncio.sleep(0.05)


async def wait_dead(handle: Any, timeout: float = 10.0) -> None:
    """Block until calls to the actor raise RayActorError (it stopped for good)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await asyncio.wait_for(handle.info.remote(), timeout)
        except RayActorError:
            return
        assert time.monotonic() < deadline, f"actor still answering after {timeout:g} s"
        await asyncio.sleep(0.05)


def is_unavailable(result: Result) -> bool:
    """Whether a result is the storage-did-not-confirm answer."""
    return not result.ok and result.error is not None and result.error["type"] == "unavailable"


def stored_state(url: str, route_id: str) -> RouteState:
    """What recovery rebuilds from Redis right now (snapshot + journal tail)."""
    client = redis.Redis.from_url(url)
    try:
        state, _ = recover(client, route_id)
    finally:
        client.close()
    return state


def assert_no_double_sale(records: Iterable[Record]) -> None:
    """No seat has a segment sold to two live bookings."""
    taken: dict[int, int] = {}
    for rec in records:
        if rec.status not in LIVE_SEATED:
            continue
        mask = trip_mask(rec.from_idx, rec.to_idx)
        for seat in rec.seats:
            assert not taken.get(seat, 0) & mask, f"seat {seat} sold twice ({rec.booking_id})"
            taken[seat] = taken.get(seat, 0) | mask


def assert_bits_match_bookings(state: RouteState) -> None:
    """The seat map is exactly the union of the live bookings' segments, none sold twice."""
    expected = [0] * len(state.inv.bits)
    for b in state.bookings.values():
        if b.status in LIVE_SEATED:
            for seat in b.seats:
                assert not expected[seat] & b.mask, f"seat {seat} sold twice ({b.booking_id})"
                expected[seat] |= b.mask
    assert state.inv.bits == expected


class FlakyProxy:
    """A TCP proxy in front of Redis that can lose or delay the answer to one script write.

    Lost: the write lands in Redis but the caller's connection is closed before the
    answer arrives, the ambiguous failure a network blip or a Redis crash produces.
    Delayed: the write lands at once and its answer arrives `seconds` later, as from a
    slow network or a stalled fsync. Runs on the test's event loop, so the test must
    await (not block) while it is in use.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.lose_next = False
        self.delay_next = 0.0
        self.lost = 0
        self.delayed = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the pumps, cancelled on close
        self._connections: set[asyncio.Task[Any]] = set()  # awaited, never cancelled

    async def start(self) -> str:
        """Listen on a free local port; the redis:// URL clients should use."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}/0"

    async def close(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        # a cancelled connection handler makes asyncio log an error: let each one finish
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        this = asyncio.current_task()
        assert this is not None
        self._connections.add(this)
        this.add_done_callback(self._connections.discard)
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        watching = asyncio.Event()  # a script call went up while a fault is armed

        async def up() -> None:
            while data := await client_r.read(65536):
                if (self.lose_next or self.delay_next) and b"EVALSHA" in data.upper():
                    watching.set()
                server_w.write(data)
                await server_w.drain()

        async def down() -> None:
            while data := await server_r.read(65536):
                # a bulk string answers the append script with its new entry id: the write
                # is done. Other answers (NOSCRIPT, a snapshot's 1) pass unharmed.
                if watching.is_set() and data.startswith(b"$"):
                    if self.lose_next:
                        self.lose_next = False
                        self.lost += 1
                        return
                    if self.delay_next:
                        seconds, self.delay_next = self.delay_next, 0.0
                        self.delayed += 1
                        await asyncio.sleep(seconds)
                watching.clear()
                client_w.write(data)
                await client_w.drain()

        pumps = [asyncio.create_task(up()), asyncio.create_task(down())]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_w, server_w):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

"""The front end's side of the route actors, in one place for the endpoints: the routes
this front end knows (one `Channel` each), and the parts that use them (docs/architecture.md,
"The planes"):

- `connector.py`: finds a route's actor through Ray and keeps the data-plane link to it;
- `batches.py`: per-route batching and admission of commands;
- `reads.py`: availability and seat-map reads outside the batches;
- `refusals.py`: the Redis marks of keys answered "sold out" from memory;
- `holds.py`: wakes routes whose holds fell due while their actor was down;
- `readiness.py`: /readyz's checks.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import redis.asyncio as aredis

from actors.directory import Directory
from actors.domain.messages import Command
from actors.domain.views import Result
from actors.storage import routes_store
from actors.storage.read_side import CachedMarks
from server.dispatch.batches import Batches
from server.dispatch.channel import Channel
from server.dispatch.connector import Connector
from server.dispatch.errors import NoSuchRoute
from server.dispatch.holds import HoldKeeper
from server.dispatch.readiness import Readiness
from server.dispatch.reads import Reads
from server.dispatch.refusals import Refusals
from server.flight import SingleFlight
from server.settings import Settings


class Gateway:
    """The routes this front end knows, and the ways to their actors."""

    def __init__(self, settings: Settings, client: aredis.Redis, directory: Directory) -> None:
        self.settings = settings
        self.client = client
        self.directory = directory
        self._channels: dict[str, Channel] = {}
        self._loading: SingleFlight[str, Channel] = SingleFlight()
        connector = Connector(settings, directory)
        self.batches = Batches(settings, connector)
        self.reads = Reads(settings, connector)
        self.holds = HoldKeeper(client, connector)
        self.readiness = Readiness(client)
        # sold out from memory, unless an actor journalled the key (refusals.py)
        config = directory.config  # the lean connection speaks to one server, not a cluster
        marks = CachedMarks(client, None if config.redis_nodes else config.redis_url)
        self.refusals = Refusals(marks, settings.availability_refresh)

    # ---- routes -------------------------------------------------------------------

    async def channel(self, route_id: str) -> Channel:
        """The route's channel; NoSuchRoute if there is no such route."""
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
            raise NoSuchRoute(route_id) from None
        # routes never change once created, so the definition is cached for good
        return self._channels.setdefault(route_id, Channel(route))

    def peek(self, route_id: str) -> Channel | None:
        """The route's channel if this front end has one, without loading anything."""
        return self._channels.get(route_id)

    def channels(self) -> list[Channel]:
        """Every route this front end has loaded (for the operator console)."""
        return list(self._channels.values())

    # ---- the endpoints' entry points (each hands back its part's coroutine: no extra
    # frame on the booking path) ------------------------------------------------------

    def admit(self, ch: Channel) -> None:
        """Raise Overloaded at once when the route's queue is full (batches.py)."""
        self.batches.admit(ch)

    def call(self, ch: Channel, cmd: Command) -> Coroutine[Any, Any, Result]:
        """Run one command on the route's actor, batched with concurrent ones."""
        return self.batches.call(ch, cmd)

    def fresh_matrix(self, ch: Channel) -> dict[str, list[int]] | None:
        """The cached availability if it is within the refresh interval, else None."""
        return self.reads.fresh_matrix(ch)

    def matrix(self, ch: Channel) -> Coroutine[Any, Any, dict[str, list[int]]]:
        """Availability for reads: cached, refreshed from the actor when stale."""
        return self.reads.matrix(ch)

    def read(self, ch: Channel, op: int) -> Coroutine[Any, Any, bytes]:
        """One read on the route's data plane outside the batches (reads.py)."""
        return self.reads.read(ch, op)

    def keep_holds(self, interval: float = 0.5) -> Coroutine[Any, Any, None]:
        """Wake routes whose holds fell due while their actor was down (holds.py)."""
        return self.holds.run(interval)

    def ready(self) -> Coroutine[Any, Any, dict[str, str]]:
        """Readiness of Redis and Ray (readiness.py)."""
        return self.readiness.check()

    def queue_depth(self) -> int:
        """Requests waiting across all routes (for metrics)."""
        return self.batches.queue_depth(self.channels())

    def close_links(self) -> None:
        """Close every data-plane connection (shutdown)."""
        self.refusals.close()
        for ch in self._channels.values():
            Connector.close(ch)

"""One route as a front end sees it: its definition, its batch queue, its availability
snapshot and its data-plane link (server/dispatch/gateway.py drives them)."""

from __future__ import annotations

import asyncio
import time

import msgspec
from starlette.responses import Response

from actors.domain.messages import Command
from actors.domain.route import RouteDef, pair_index
from actors.domain.views import Reply, Result
from server.dispatch.link import Link

_reply = msgspec.msgpack.Decoder(Reply)


class Channel:
    """One route as this front end sees it: definition, batch queue, availability."""

    __slots__ = (
        "answered",
        "classes",
        "connecting",
        "down",
        "expected",
        "fetched",
        "gathering",
        "inflight",
        "link",
        "matrix",
        "n",
        "queue",
        "refreshing",
        "route",
        "seat_names",
        "sold_out_answers",
        "station_index",
        "version",
    )

    def __init__(self, route: RouteDef) -> None:
        self.route = route
        self.n = len(route.stations)
        self.station_index = {name: i for i, name in enumerate(route.stations)}
        self.classes = route.classes()
        self.queue: list[tuple[Command, asyncio.Future[Result]]] = []
        self.inflight = 0  # calls to the route's actor in flight from this front end
        #: under load, how many requests the next call waits for, at most the linger
        #: (server/dispatch/batches.py); `answered`: when the last call was answered
        #: (monotonic); `gathering`: resolved once they have queued
        self.expected = 0
        self.answered = 0.0
        self.gathering: asyncio.Future[None] | None = None
        self.matrix: dict[str, list[int]] | None = None
        self.version = -1
        self.fetched = 0.0
        self.refreshing: asyncio.Task[None] | None = None
        #: the last call found the actor unreachable; cleared by the next call that succeeds
        self.down = False
        #: the data-plane connection to the route's actor, and the task (re)making it
        self.link: Link | None = None
        self.connecting: asyncio.Task[Link] | None = None
        #: (coach, seat name) -> (seat index, class), made on the first picked seat
        self.seat_names: dict[tuple[str, str], tuple[int, str]] | None = None
        #: (class, from, to, passengers) -> the 409 answered from the snapshot for it
        #: (server/api/bookings.py): the same bytes every time
        self.sold_out_answers: dict[tuple[str, str, str, int], Response] = {}

    def seat_index(self) -> dict[tuple[str, str], tuple[int, str]]:
        """Each seat by its coach and name (routes never change once created)."""
        if self.seat_names is None:
            self.seat_names = {(s.coach, s.name): (s.index, s.klass) for s in self.route.seats()}
        return self.seat_names

    def free_seats(self, klass: str, i: int, j: int, max_age: float) -> int | None:
        """Free `klass` seats from station i to j per the snapshot, if it is at most
        `max_age` seconds old; None otherwise."""
        if self.matrix is None or time.monotonic() - self.fetched > max_age:
            return None
        return self.matrix[klass][pair_index(i, j, self.n)]

    def take_raw(self, raw: bytes) -> Reply:
        """Decode an actor's reply and take its availability rows (see `take`)."""
        reply = _reply.decode(raw)
        self.take(reply)
        return reply

    def take(self, reply: Reply) -> None:
        """Merge a reply's availability rows (only the classes that changed since the
        link's last answer) unless we already hold newer figures."""
        if reply.version < self.version:
            return
        # a new dict, never an update in place: readers (search's remembered answers)
        # tell a changed snapshot by identity
        if self.matrix is None:
            self.matrix = reply.matrix
        elif reply.matrix:
            self.matrix = {**self.matrix, **reply.matrix}
        self.version, self.fetched = reply.version, time.monotonic()

"""Search: which trains of a date go from A to B, with exact seats, from front-end state.

Route definitions never change once created, so each front end keeps, per
date, an index station -> {route_id: position along the route}. A trip's
candidates are the routes stopping at A whose position of B is later.

Availability comes from this front end's own per-route snapshot when it is
fresh (it reads its own writes), else from what each route's actor stores in
Redis with every journal append and at activation (`keys.availability`).
Nothing here ever calls, or creates, a route actor: a cold route costs a
Redis read per refresh interval, not a ~70 MB process and a second of start-up.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field

import msgspec
import redis
import redis.asyncio as aredis
import structlog

from actors import journal, keys, routes_store
from actors.actor import recover
from actors.route import RouteDef, pair_index
from actors.state import RouteState
from actors.views import availability_matrix
from server.gateway import Gateway

log = structlog.get_logger("ticketd.search")

#: dates whose index a front end keeps (least recently searched dropped first)
MAX_DATES = 400
#: station pairs whose candidate list one date index keeps
_MAX_PAIRS = 20_000
#: search answers remembered (by raw query string) before the memory is cleared
_MAX_ANSWERS = 10_000
#: station names remembered as known or unknown (for the unknown-station answer)
_MAX_STATIONS = 50_000


@dataclass(slots=True)
class Figures:
    """A route's availability as this front end last read it from Redis."""

    version: int
    matrix: dict[str, list[int]]
    fetched: float


@dataclass(slots=True, eq=False)
class DateIndex:
    """The routes of one date and where each stops."""

    routes: dict[str, RouteDef] = field(default_factory=dict)
    stops: dict[str, dict[str, int]] = field(default_factory=dict)
    #: (from, to) -> [(route_id, i, j)], cleared whenever a route is added
    pairs: dict[tuple[str, str], list[tuple[str, int, int]]] = field(default_factory=dict)
    checked: float = 0.0
    refreshing: asyncio.Task[None] | None = None
    #: bumped by every route added (remembered answers of the date go stale)
    version: int = 0

    def add(self, route: RouteDef) -> None:
        """Index one route (idempotent)."""
        if route.route_id in self.routes:
            return
        self.routes[route.route_id] = route
        for i, station in enumerate(route.stations):
            self.stops.setdefault(station, {})[route.route_id] = i
        self.pairs.clear()
        self.version += 1

    def candidates(self, from_: str, to: str) -> list[tuple[str, int, int]]:
        """(route_id, i, j) of every route stopping at from_ and later at to, by train."""
        found = self.pairs.get((from_, to))
        if found is not None:
            return found
        a, b = self.stops.get(from_, {}), self.stops.get(to, {})
        found = [(rid, i, b[rid]) for rid, i in a.items() if rid in b and i < b[rid]]
        found.sort(key=lambda c: (self.routes[c[0]].train, c[0]))
        if len(self.pairs) >= _MAX_PAIRS:
            self.pairs.clear()
        self.pairs[(from_, to)] = found
        return found


@dataclass(frozen=True, slots=True)
class Answer:
    """A search answer remembered under its raw query string, with what it was made of."""

    body: bytes
    index: DateIndex
    version: int
    generation: int
    until: float
    used: list[tuple[str, dict[str, list[int]], int]]


def _most(availability: dict[str, int], klass: str | None) -> int:
    if klass is not None:
        return availability[klass]
    return max(availability.values(), default=0)


@dataclass(frozen=True, slots=True)
class Train:
    """One search hit: the route, the trip's station positions, free seats per class."""

    route: RouteDef
    i: int
    j: int
    availability: dict[str, int]


class Search:
    """The front end's search index and stored-availability cache."""

    def __init__(
        self, client: aredis.Redis, redis_url: str, gateway: Gateway, refresh: float
    ) -> None:
        self.client = client
        self.redis_url = redis_url
        self.gateway = gateway
        self.refresh = refresh
        self._dates: OrderedDict[str, DateIndex] = OrderedDict()
        self._loading: dict[str, asyncio.Task[DateIndex]] = {}
        self._figures: dict[str, Figures] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._stations: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._answers: dict[bytes, Answer] = {}
        #: bumped whenever stored figures replace the ones held: remembered answers go stale
        self._generation = 0

    # ---- the index ----------------------------------------------------------------

    async def date(self, date: str) -> DateIndex:
        """The index of a date; loaded on first use, then checked once per refresh."""
        index = self._dates.get(date)
        if index is None:
            task = self._loading.get(date)
            if task is None:
                task = asyncio.create_task(self._load_date(date))
                self._loading[date] = task
                task.add_done_callback(lambda _: self._loading.pop(date, None))
            return await asyncio.shield(task)
        self._dates.move_to_end(date)
        if time.monotonic() - index.checked > self.refresh and (
            index.refreshing is None or index.refreshing.done()
        ):
            # routes created through other front ends show within a refresh interval; this
            # request answers from the index as it stands rather than wait for Redis
            index.refreshing = self._spawn(self._check_quietly(date, index))
        return index

    async def _load_date(self, date: str) -> DateIndex:
        index = DateIndex()
        await self._check_date(date, index)
        self._dates[date] = index
        while len(self._dates) > MAX_DATES:
            self._dates.popitem(last=False)
        return index

    async def _check_date(self, date: str, index: DateIndex) -> None:
        index.checked = time.monotonic()
        if await self.client.zcard(keys.routes_of_date(date)) == len(index.routes):
            return  # routes are never deleted: same count, same routes
        ids = await routes_store.ids_of_date(self.client, date)
        new = [rid for rid in ids if rid not in index.routes]
        for route in await routes_store.fetch_many(self.client, new):
            index.add(route)

    async def _check_quietly(self, date: str, index: DateIndex) -> None:
        try:
            await self._check_date(date, index)
        except (redis.RedisError, OSError) as exc:  # the next search tries again
            log.warning("search index refresh failed", date=date, error=repr(exc))

    async def station_known(self, station: str) -> bool:
        """Whether any route of any date stops at this station."""
        known = self._stations.get(station)
        if known:
            return True
        if known is None or len(self._stations) >= _MAX_STATIONS:
            if len(self._stations) >= _MAX_STATIONS:
                self._stations.clear()
            # an unknown name is asked again each time: a route may have been created since
            known = bool(await self.client.exists(keys.routes_of_station(station)))
            if known:
                self._stations[station] = True
        return bool(known)

    # ---- availability -------------------------------------------------------------

    async def trains(self, date: str, from_: str, to: str) -> list[Train]:
        """Every train of the date from `from_` to later `to`, with exact seats per class."""
        trains, _, _ = await self._trains(await self.date(date), from_, to)
        return trains

    async def _trains(
        self, index: DateIndex, from_: str, to: str
    ) -> tuple[list[Train], list[tuple[str, dict[str, list[int]], int]], float]:
        """The trains, the figures used (route id, matrix, version), and until when all of
        those figures are within the refresh interval."""
        found = index.candidates(from_, to)
        now = time.monotonic()
        stale = [rid for rid, _, _ in found if self._pick(rid, now) is None]
        if stale:
            await self._fetch(index, stale)
        trains: list[Train] = []
        used: list[tuple[str, dict[str, list[int]], int]] = []
        until = now + self.refresh
        for rid, i, j in found:
            route = index.routes[rid]
            pick = self._pick(rid, now, stale_ok=True)
            assert pick is not None
            matrix, version, fresh_until = pick
            used.append((rid, matrix, version))
            until = min(until, fresh_until)
            p = pair_index(i, j, len(route.stations))
            trains.append(Train(route, i, j, {k: row[p] for k, row in matrix.items()}))
        return trains, used, until

    def _pick(
        self, route_id: str, now: float, stale_ok: bool = False
    ) -> tuple[dict[str, list[int]], int, float] | None:
        """(matrix, version, fresh until) of the newest figures within the refresh interval:
        this front end's own snapshot (from its last actor reply) or the stored ones."""
        fig = self._figures.get(route_id)
        ch = self.gateway.peek(route_id)
        if (
            ch is not None
            and ch.matrix is not None
            and now - ch.fetched <= self.refresh
            and (fig is None or ch.version >= fig.version)
        ):
            return ch.matrix, ch.version, ch.fetched + self.refresh
        if fig is not None and (stale_ok or now - fig.fetched <= self.refresh):
            return fig.matrix, fig.version, fig.fetched + self.refresh
        return None

    # ---- whole answers ----------------------------------------------------------------

    async def answer(
        self, query: bytes, date: str, from_: str, to: str, klass: str | None, seats: int
    ) -> bytes:
        """The search answer's JSON body, remembered under its raw query string."""
        index = await self.date(date)
        version, generation = index.version, self._generation
        trains, used, until = await self._trains(index, from_, to)
        if klass is not None:
            trains = [t for t in trains if klass in t.availability]
        if seats:
            trains = [t for t in trains if _most(t.availability, klass) >= seats]
        body = msgspec.json.encode(
            {"date": date, "from": from_, "to": to, "trains": encode_trains(trains)}
        )
        if len(self._answers) >= _MAX_ANSWERS:
            self._answers.clear()
        self._answers[query] = Answer(body, index, version, generation, until, used)
        return body

    def cached(self, query: bytes) -> bytes | None:
        """The body of the same search made earlier, if every figure in it is still the
        newest and within the refresh interval (so it is as exact as a fresh answer)."""
        hit = self._answers.get(query)
        if hit is None:
            return None
        now = time.monotonic()
        index = hit.index
        if (
            now >= hit.until
            or hit.generation != self._generation
            or hit.version != index.version
            or now - index.checked > self.refresh
        ):
            return None
        peek, refresh = self.gateway.peek, self.refresh
        for rid, matrix, version in hit.used:
            ch = peek(rid)
            if (
                ch is not None
                and ch.matrix is not matrix
                and ch.version > version
                and now - ch.fetched <= refresh
            ):
                return None  # this front end has newer figures of its own (its own write)
        return hit.body

    async def _fetch(self, index: DateIndex, route_ids: list[str]) -> None:
        """Read the stored availability of these routes, one round trip for all of them;
        a route already being read is waited for, not read twice."""
        waiting = [self._fetching[r] for r in route_ids if r in self._fetching]
        todo = [r for r in route_ids if r not in self._fetching]
        if todo:
            task = self._spawn(self._read([index.routes[r] for r in todo]))
            for rid in todo:
                self._fetching[rid] = task

            def done(_: asyncio.Task[None]) -> None:
                for rid in todo:
                    self._fetching.pop(rid, None)

            task.add_done_callback(done)
            waiting.append(task)
        await asyncio.shield(asyncio.gather(*waiting))

    async def _read(self, routes: list[RouteDef]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for route in routes:
            pipe.get(keys.availability(route.route_id))
            pipe.exists(keys.journal(route.route_id), keys.snapshot(route.route_id))
        answers = await pipe.execute()
        now = time.monotonic()
        for n, route in enumerate(routes):
            raw, history = answers[2 * n], answers[2 * n + 1]
            rid = route.route_id
            if raw is not None:
                stored = journal.decode_availability(raw)
                old = self._figures.get(rid)
                if old is None or stored.version > old.version:
                    self._figures[rid] = Figures(stored.version, stored.matrix, now)
                    self._generation += 1
                else:  # the same figures (or older: a reply already gave us newer ones)
                    old.fetched = now
                continue
            old = self._figures.get(rid)
            if old is not None:
                # nothing stored yet, and what we hold cannot have changed: an actor stores
                # its availability when it activates, before it can change anything
                old.fetched = now
            elif not history:
                # never written to and no actor ever ran: every seat is free
                self._figures[rid] = Figures(-1, availability_matrix(RouteState.empty(route)), now)
                self._generation += 1
            else:
                # journalled before stored availability existed, and no actor has run since:
                # replay it read-only, once
                matrix = await asyncio.to_thread(self._replay, rid)
                self._figures[rid] = Figures(-1, matrix, now)
                self._generation += 1

    def _replay(self, route_id: str) -> dict[str, list[int]]:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=10)
        try:
            state, _ = recover(client, route_id)
        finally:
            client.close()
        return availability_matrix(state)

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task


def encode_trains(trains: list[Train]) -> list[dict[str, object]]:
    """The search answer's `trains` items."""
    return [
        {"route_id": t.route.route_id, "train": t.route.train, "availability": t.availability}
        for t in trains
    ]

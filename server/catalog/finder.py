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
from dataclasses import dataclass

import msgspec
import redis
import redis.asyncio as aredis
import structlog

from actors.domain.route import RouteDef, pair_index
from actors.domain.state import RouteState
from actors.domain.views import availability_matrix
from actors.storage import keys, read_side, routes_store
from server.catalog.timetable import DateIndex, Train, encode_trains
from server.dispatch.channel import Channel
from server.dispatch.gateway import Gateway
from server.flight import SingleFlight

log = structlog.get_logger("ticketd.search")

#: dates whose index a front end keeps (least recently searched dropped first)
MAX_DATES = 400
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


#: where a figure in an answer came from: stored figures, or this front end's own snapshot
Source = Figures | Channel
#: one route's figures in an answer: route id, source, matrix, version
Used = tuple[str, Source, dict[str, list[int]], int]


@dataclass(slots=True)
class Answer:
    """A search answer remembered under its raw query string, with what it was made of."""

    body: bytes
    index: DateIndex
    version: int
    used: list[Used]
    prefetching: asyncio.Task[None] | None = None


def _most(availability: dict[str, int], klass: str | None) -> int:
    if klass is not None:
        return availability[klass]
    return max(availability.values(), default=0)


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
        self._loading: SingleFlight[str, DateIndex] = SingleFlight()
        self._figures: dict[str, Figures] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._stations: dict[str, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._answers: dict[bytes, Answer] = {}
        self._building: dict[bytes, asyncio.Future[bytes]] = {}

    # ---- the index ----------------------------------------------------------------

    async def date(self, date: str) -> DateIndex:
        """The index of a date; loaded on first use, then checked once per refresh."""
        index = self._dates.get(date)
        if index is None:
            return await self._loading.run(date, lambda: self._load_date(date))
        self._dates.move_to_end(date)
        if time.monotonic() - index.checked > self.refresh and (
            index.refreshing is None or index.refreshing.done()
        ):
            # routes created through other front ends show within a refresh interval; this
            # request answers from the index as it stands rather than wait for Redis
            index.refreshing = self._spawn(self._check_quietly(index))
        return index

    async def _load_date(self, date: str) -> DateIndex:
        index = DateIndex(date)
        await self._check_date(index)
        self._dates[date] = index
        while len(self._dates) > MAX_DATES:
            _, dropped = self._dates.popitem(last=False)
            for rid in dropped.routes:  # memory stays bounded by the dates kept
                self._figures.pop(rid, None)
        return index

    async def _check_date(self, index: DateIndex) -> None:
        index.checked = time.monotonic()
        if await self.client.zcard(keys.routes_of_date(index.date)) == len(index.routes):
            return  # routes are never deleted: same count, same routes
        ids = await routes_store.ids_of_date(self.client, index.date)
        new = [rid for rid in ids if rid not in index.routes]
        for route in await routes_store.fetch_many(self.client, new):
            index.add(route)

    async def _check_quietly(self, index: DateIndex) -> None:
        try:
            await self._check_date(index)
        except (redis.RedisError, OSError) as exc:  # the next search tries again
            log.warning("search index refresh failed", date=index.date, error=repr(exc))

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
        trains, _ = await self._trains(await self.date(date), from_, to)
        return trains

    async def _trains(
        self, index: DateIndex, from_: str, to: str
    ) -> tuple[list[Train], list[Used]]:
        """The trains, and the figures they were read from."""
        found = index.candidates(from_, to)
        now = time.monotonic()
        stale = [rid for rid, _, _ in found if self._pick(rid, now) is None]
        if stale:
            await self._fetch(index, stale)
        trains: list[Train] = []
        used: list[Used] = []
        for rid, i, j in found:
            route = index.routes[rid]
            source = self._pick(rid, now, stale_ok=True)
            assert source is not None and source.matrix is not None
            used.append((rid, source, source.matrix, source.version))
            p = pair_index(i, j, len(route.stations))
            trains.append(Train(route, i, j, {k: row[p] for k, row in source.matrix.items()}))
        return trains, used

    def _pick(self, route_id: str, now: float, stale_ok: bool = False) -> Source | None:
        """The newest figures within the refresh interval: this front end's own snapshot
        (from its last actor reply) or the stored ones."""
        fig = self._figures.get(route_id)
        ch = self.gateway.peek(route_id)
        if (
            ch is not None
            and ch.matrix is not None
            and now - ch.fetched <= self.refresh
            and (fig is None or ch.version >= fig.version)
        ):
            return ch
        if fig is not None and (stale_ok or now - fig.fetched <= self.refresh):
            return fig
        return None

    # ---- whole answers ----------------------------------------------------------------

    async def answer(
        self, query: bytes, date: str, from_: str, to: str, klass: str | None, seats: int
    ) -> bytes:
        """The search answer's JSON body, remembered under its raw query string.

        Requests that miss together wait for one computation, not one each."""
        building = self._building.get(query)
        if building is None:
            building = asyncio.ensure_future(self._answer(query, date, from_, to, klass, seats))
            self._building[query] = building
            building.add_done_callback(lambda _: self._building.pop(query, None))
        return await asyncio.shield(building)

    async def _answer(
        self, query: bytes, date: str, from_: str, to: str, klass: str | None, seats: int
    ) -> bytes:
        index = await self.date(date)
        version = index.version
        trains, used = await self._trains(index, from_, to)
        if klass is not None:
            trains = [t for t in trains if klass in t.availability]
        if seats:
            trains = [t for t in trains if _most(t.availability, klass) >= seats]
        body = msgspec.json.encode(
            {"date": date, "from": from_, "to": to, "trains": encode_trains(trains)}
        )
        if len(self._answers) >= _MAX_ANSWERS:
            self._answers.clear()
        self._answers[query] = Answer(body, index, version, used)
        return body

    def cached(self, query: bytes) -> bytes | None:
        """The body of the same search made earlier, if every figure in it is still the
        newest this front end knows and within the refresh interval: as exact as a fresh
        answer. Figures about to age out are re-read in the background meanwhile."""
        hit = self._answers.get(query)
        if hit is None:
            return None
        index = hit.index
        if hit.version != index.version:
            return None  # a route was added to the date
        now = time.monotonic()
        refresh = self.refresh
        figures, peek = self._figures, self.gateway.peek
        oldest = now
        for rid, source, matrix, version in hit.used:
            if isinstance(source, Figures):
                if figures.get(rid) is not source or now - source.fetched > refresh:
                    return None  # replaced by newer stored figures, or too old
                oldest = min(oldest, source.fetched)
                ch = peek(rid)
                if (
                    ch is not None
                    and ch.version > version
                    and ch.matrix is not None
                    and now - ch.fetched <= refresh
                ):
                    return None  # this front end's own write is newer
            elif source.matrix is not matrix or now - source.fetched > refresh:
                return None  # own snapshot replaced, or too old
        if now - oldest > refresh / 2 and (hit.prefetching is None or hit.prefetching.done()):
            stored = [rid for rid, source, _, _ in hit.used if isinstance(source, Figures)]
            hit.prefetching = self._spawn(self._prefetch(index, stored))
        if now - index.checked > refresh / 2 and (
            index.refreshing is None or index.refreshing.done()
        ):
            index.refreshing = self._spawn(self._check_quietly(index))
        return hit.body

    async def _prefetch(self, index: DateIndex, route_ids: list[str]) -> None:
        try:
            await self._fetch(index, route_ids)
        except (redis.RedisError, OSError) as exc:  # a later request reads them itself
            log.warning("search prefetch failed", error=repr(exc))

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
        read = await read_side.read_availability(self.client, [r.route_id for r in routes])
        now = time.monotonic()
        for route, (stored, history) in zip(routes, read, strict=True):
            rid = route.route_id
            if stored is not None:
                old = self._figures.get(rid)
                if old is None or stored.version > old.version:
                    self._figures[rid] = Figures(stored.version, stored.matrix, now)
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
            else:
                # journalled before stored availability existed, and no actor has run since:
                # replay it read-only, once
                matrix = await asyncio.to_thread(read_side.replay_availability, self.redis_url, rid)
                self._figures[rid] = Figures(-1, matrix, now)

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)
        return task

"""The timetable of one date as a front end indexes it: which trains stop where.

Route definitions never change once created, so the index only grows; a trip's
candidates are the routes stopping at A whose position of B is later, ordered
by departure from A (scheduled trains) and then by train.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from actors.domain.route import RouteDef, minutes

#: station pairs whose candidate list one date index keeps
_MAX_PAIRS = 20_000


@dataclass(slots=True, eq=False)
class DateIndex:
    """The routes of one date and where each stops."""

    date: str
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
        found.sort(key=lambda c: _order(self.routes[c[0]], c[1]))
        if len(self.pairs) >= _MAX_PAIRS:
            self.pairs.clear()
        self.pairs[(from_, to)] = found
        return found


def _order(route: RouteDef, i: int) -> tuple[int, int, str]:
    # scheduled trains by departure from the boarding station, then the others by train
    departure = route.departure(i)
    if departure is None:
        return (1, 0, route.train)
    return (0, minutes(departure), route.train)


@dataclass(frozen=True, slots=True)
class Train:
    """One search hit: the route, the trip's station positions, free seats per class."""

    route: RouteDef
    i: int
    j: int
    availability: dict[str, int]


def encode_trains(trains: list[Train]) -> list[dict[str, object]]:
    """The search answer's `trains` items (times only for scheduled routes)."""
    out: list[dict[str, object]] = []
    for t in trains:
        item: dict[str, object] = {
            "route_id": t.route.route_id,
            "train": t.route.train,
            "availability": t.availability,
        }
        if t.route.schedule:
            item["departure"] = t.route.departure(t.i)
            item["arrival"] = t.route.arrival(t.j)
        out.append(item)
    return out

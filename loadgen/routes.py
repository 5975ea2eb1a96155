"""Route definitions loadgen creates: fresh train names every run, coaches sized to a seat count."""

from __future__ import annotations

import math
import secrets
from datetime import date, timedelta

from loadgen.wire import Coach, RouteDef

# The Beijing–Shanghai high-speed line; a route takes its first and last station and an even
# spread of those between.
STATIONS = (
    "Beijing South",
    "Langfang",
    "Tianjin South",
    "Cangzhou West",
    "Dezhou East",
    "Jinan West",
    "Tai'an",
    "Qufu East",
    "Tengzhou East",
    "Zaozhuang",
    "Xuzhou East",
    "Suzhou East",
    "Bengbu South",
    "Dingyuan",
    "Chuzhou",
    "Nanjing South",
    "Zhenjiang South",
    "Danyang North",
    "Changzhou North",
    "Wuxi East",
    "Suzhou North",
    "Kunshan South",
    "Shanghai Hongqiao",
)
ROWS_PER_COACH = 20
SECOND_LETTERS = "ABCDF"
BUSINESS_LETTERS = "ACF"


def stations(count: int) -> tuple[str, ...]:
    """`count` stations in travel order, first and last always included."""
    if not 2 <= count <= len(STATIONS):
        raise ValueError(f"a route has 2 to {len(STATIONS)} stations, not {count}")
    last = len(STATIONS) - 1
    return tuple(STATIONS[round(k * last / (count - 1))] for k in range(count))


def coaches(seats: int) -> tuple[Coach, ...]:
    """About `seats` seats: one business coach (a tenth of them) and second-class coaches."""
    business_rows = min(ROWS_PER_COACH, max(1, round(seats * 0.1 / len(BUSINESS_LETTERS))))
    second = max(1, seats - business_rows * len(BUSINESS_LETTERS))
    rows_left = math.ceil(second / len(SECOND_LETTERS))
    layout = [Coach(number="01", klass="business", rows=business_rows, letters=BUSINESS_LETTERS)]
    while rows_left > 0:
        rows = min(ROWS_PER_COACH, rows_left)
        number = f"{len(layout) + 1:02d}"
        layout.append(Coach(number=number, klass="second", rows=rows, letters=SECOND_LETTERS))
        rows_left -= rows
    return tuple(layout)


def seat_count(route: RouteDef) -> int:
    """Seats on the train."""
    return sum(c.rows * len(c.letters) for c in route.coaches)


def route_id(route: RouteDef) -> str:
    """The server's id for the route: `<train>-<YYYYMMDD>`."""
    return route.route_id or f"{route.train}-{route.date.replace('-', '')}"


def fresh_route(station_count: int, seats: int, *, today: date | None = None) -> RouteDef:
    """A route under a random temporary-train name (L + 4 digits) on a random day 30–119 days out.

    Names come from `secrets`, not the workload seed: two runs with one --seed must still get
    different routes. The caller retries on the rare collision (the server answers 200 or 409).
    """
    day = (today or date.today()) + timedelta(days=30 + secrets.randbelow(90))
    return RouteDef(
        train=f"L{secrets.randbelow(10_000):04d}",
        date=day.isoformat(),
        stations=stations(station_count),
        coaches=coaches(seats),
    )

"""Builders and checks shared by the HTTP tests (tests/server/, tests/loadgen/)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpx

DATE = "2026-12-01"
PROBLEM = "application/problem+json"
STATIONS = ("A", "B", "C", "D")

#: the `token` fixture: token(user, admin=False) -> "Bearer …"
Tokens = Callable[..., str]
#: the `route_id_factory` fixture
Ids = Callable[[], str]
#: the `app_factory` fixture: a running app with settings overrides -> its client
AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]

_keys = itertools.count()


def coach(number: str, klass: str, rows: int, letters: str) -> dict[str, Any]:
    """One coach of a route definition."""
    return {"number": number, "class": klass, "rows": rows, "letters": letters}


def route_body(
    train: str,
    stations: Iterable[str] = STATIONS,
    coaches: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A route definition; by default 4 stations, 4 second-class and 2 business seats."""
    if coaches is None:
        coaches = [coach("01", "business", 1, "AC"), coach("02", "second", 2, "AB")]
    return {"train": train, "date": DATE, "stations": list(stations), "coaches": coaches}


def train_of(route_id_factory: Callable[[], str]) -> str:
    """A fresh train number (route ids must never repeat: detached actors outlive tests)."""
    return route_id_factory().split("-")[0]


async def create_route(api: httpx.AsyncClient, admin: str, body: dict[str, Any]) -> str:
    """Create a route as `admin` (a bearer header value); returns its route id."""
    r = await api.post("/v1/routes", json=body, headers={"Authorization": admin})
    assert r.status_code == 201, r.text
    route_id: str = r.json()["route_id"]
    return route_id


def people(*ids: str) -> list[dict[str, str]]:
    """Passengers named after their ids."""
    return [{"name": f"Passenger {pid}", "id": pid} for pid in ids]


def booking_body(
    from_: str, to: str, klass: str, passengers: list[dict[str, str]], **extra: Any
) -> dict[str, Any]:
    """A booking request."""
    return {"from": from_, "to": to, "class": klass, "passengers": passengers, **extra}


def new_key() -> str:
    """A fresh Idempotency-Key."""
    return f"key-{next(_keys)}"


async def book(
    api: httpx.AsyncClient,
    route_id: str,
    auth: str,
    body: dict[str, Any],
    key: str | None = None,
) -> httpx.Response:
    """POST a booking with a fresh Idempotency-Key unless one is given."""
    headers = {"Authorization": auth, "Idempotency-Key": key or new_key()}
    return await api.post(f"/v1/routes/{route_id}/bookings", json=body, headers=headers)


async def availability(
    api: httpx.AsyncClient, route_id: str, from_: str, to: str
) -> dict[str, int]:
    """Free seats per class for a trip (asserts 200)."""
    r = await api.get(f"/v1/routes/{route_id}/availability", params={"from": from_, "to": to})
    assert r.status_code == 200, r.text
    counts: dict[str, int] = r.json()["availability"]
    return counts


async def admin_list(api: httpx.AsyncClient, route_id: str, admin: str) -> list[dict[str, Any]]:
    """Every booking of the route, as the admin list shows it (asserts 200)."""
    r = await api.get(f"/v1/routes/{route_id}/bookings", headers={"Authorization": admin})
    assert r.status_code == 200, r.text
    bookings: list[dict[str, Any]] = r.json()["bookings"]
    return bookings


def assert_problem(r: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """r is an RFC 9457 problem with this status (and type slug); returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM, r.headers
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if type_ is not None:
        assert body["type"] == type_, body
    return body


def occupied(bookings: list[dict[str, Any]], stations: list[str]) -> list[tuple[str, str, int]]:
    """(coach, seat, segment) for every segment a live booking occupies, repeats kept."""
    index = {s: i for i, s in enumerate(stations)}
    out: list[tuple[str, str, int]] = []
    for b in bookings:
        if b["status"] not in ("held", "confirmed"):
            continue
        for seat in b["seats"]:
            for seg in range(index[b["from"]], index[b["to"]]):
                out.append((seat["coach"], seat["seat"], seg))
    return out


def expected_free(
    route: dict[str, Any], bookings: list[dict[str, Any]], from_: str, to: str
) -> dict[str, int]:
    """The exact free seats per class for a trip, worked out from the admin list."""
    stations = route["stations"]
    i, j = stations.index(from_), stations.index(to)
    taken = {(c, s) for c, s, seg in occupied(bookings, stations) if i <= seg < j}
    free: dict[str, int] = {}
    for c in route["coaches"]:
        for row in range(1, c["rows"] + 1):
            for letter in c["letters"]:
                seat = (c["number"], f"{row:02d}{letter}")
                free[c["class"]] = free.get(c["class"], 0) + (seat not in taken)
    return free

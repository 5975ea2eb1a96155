"""GET /v1/routes in pages: filters by date and station, stable cursors, old data indexed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import redis.asyncio
from support.http import AppFactory, Ids, Tokens, assert_problem, coach, create_route, train_of

from actors.storage import keys


async def walk(api: httpx.AsyncClient, limit: int, **filters: str) -> list[dict[str, Any]]:
    """Every route the filters select, page by page (asserts 200 and page sizes)."""
    out: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": limit, **filters}
    while True:
        r = await api.get("/v1/routes", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["routes"]) <= limit
        out += page["routes"]
        if page["next_cursor"] is None:
            return out
        assert len(page["routes"]) == limit
        params = {**params, "cursor": page["next_cursor"]}


def _body(train: str, date: str, stations: list[str]) -> dict[str, Any]:
    return {"train": train, "date": date, "stations": stations,
            "coaches": [coach("01", "second", 1, "AB")]}  # fmt: skip


async def test_pages_filter_by_date_and_station_and_follow_route_id_order(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    tag = train_of(route_id_factory)
    here, there = f"{tag} Here", f"{tag} There"
    made: dict[str, dict[str, Any]] = {}
    for n in range(7):
        date = "2028-01-01" if n % 2 else "2028-01-02"
        stations = [here, there] if n % 3 else [there, f"{tag} Elsewhere"]
        body = _body(train_of(route_id_factory), date, stations)
        rid = await create_route(api, admin, body)
        made[rid] = {**body, "route_id": rid}

    def expect(date: str | None = None, station: str | None = None) -> list[dict[str, Any]]:
        return [
            made[rid]
            for rid in sorted(made)
            if date in (None, made[rid]["date"]) and station in (None, *made[rid]["stations"])
        ]

    for limit in (1, 2, 3, 100):
        assert await walk(api, limit, station=there) == expect(station=there)
        assert await walk(api, limit, station=here) == expect(station=here)
        assert await walk(api, limit, date="2028-01-01", station=here) == expect("2028-01-01", here)
    everything = await walk(api, 1000)
    assert [r for r in everything if r["route_id"] in made] == expect()
    dated = await walk(api, 2, date="2028-01-02")
    assert [r for r in dated if r["route_id"] in made] == expect("2028-01-02")


async def test_a_cursor_stays_valid_while_routes_are_created(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    station = f"{train_of(route_id_factory)} Cursor"
    trains = sorted(train_of(route_id_factory) for _ in range(5))
    for t in trains[1::2]:
        await create_route(api, admin, _body(t, "2028-02-01", [station, "A"]))
    r = await api.get("/v1/routes", params={"station": station, "limit": 1})
    first = r.json()
    assert [x["train"] for x in first["routes"]] == [trains[1]]
    # created after the page: one before the cursor (not shown), two after it (shown)
    for t in trains[0::2]:
        await create_route(api, admin, _body(t, "2028-02-01", [station, "A"]))
    params = {"station": station, "limit": 100, "cursor": first["next_cursor"]}
    rest = (await api.get("/v1/routes", params=params)).json()
    assert [x["train"] for x in rest["routes"]] == trains[2:]
    assert rest["next_cursor"] is None


async def test_routes_stored_before_the_indexes_are_listed_and_searchable(
    app_factory: AppFactory, route_id_factory: Ids, redis_url: str
) -> None:
    train = train_of(route_id_factory)
    stations = [f"{train} Old", f"{train} Older"]
    body = {**_body(train, "2028-03-01", stations), "route_id": f"{train}-20280301"}
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        # as an earlier version stored it: the definition alone, no index entries
        await client.hset(keys.ROUTES, body["route_id"], json.dumps(body))
        await client.delete(keys.ROUTE_INDEX_DONE)
        api = await app_factory()
        assert await client.exists(keys.ROUTE_INDEX_DONE)
    finally:
        await client.aclose()
    assert await walk(api, 10, station=stations[0]) == [body]
    r = await api.get("/v1/search", params={"from": stations[0], "to": stations[1],
                                            "date": "2028-03-01"})  # fmt: skip
    assert [t["route_id"] for t in r.json()["trains"]] == [body["route_id"]]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "date=2028-02-30",
        "date=20280201",
        "station=",
        "cursor=not-a-cursor",
        "cursor=R0lWRSBNRQ",
        "sort=train",
    ],
)
async def test_bad_listing_requests_are_problems(api: httpx.AsyncClient, query: str) -> None:
    problem = assert_problem(await api.get(f"/v1/routes?{query}"), 422, "validation")
    assert problem["detail"].endswith(".")

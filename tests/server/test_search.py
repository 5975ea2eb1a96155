"""GET /v1/search: exact against a brute-force model, never waking a route actor."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import pytest
import ray
import redis.asyncio
from support.http import (
    AppFactory,
    Ids,
    Tokens,
    assert_problem,
    book,
    booking_body,
    coach,
    create_route,
    people,
    train_of,
)

from actors.config import NAMESPACE
from actors.directory import actor_name
from actors.storage import keys

DATES = ("2027-03-01", "2027-03-02", "2027-03-03")


def _running(route_ids: list[str]) -> set[str]:
    """Those of these routes whose actor exists in Ray right now."""
    names = {a["name"] for a in ray.util.list_named_actors(all_namespaces=True)}
    return {rid for rid in route_ids if actor_name(rid) in names}


def _alive(route_id: str) -> bool:
    try:
        ray.get_actor(actor_name(route_id), namespace=NAMESPACE)
    except ValueError:
        return False
    return True


class Model:
    """Brute force: every seat of every route and the segments live bookings hold on it."""

    def __init__(self) -> None:
        self.routes: dict[str, dict[str, Any]] = {}
        self.live: dict[str, tuple[str, list[tuple[str, str]], int, int]] = {}

    def add_route(self, route: dict[str, Any]) -> None:
        self.routes[route["route_id"]] = route

    def hold(self, booking: dict[str, Any]) -> None:
        stations = self.routes[booking["route_id"]]["stations"]
        seats = [(s["coach"], s["seat"]) for s in booking["seats"]]
        i, j = stations.index(booking["from"]), stations.index(booking["to"])
        self.live[booking["booking_id"]] = (booking["route_id"], seats, i, j)

    def release(self, booking_id: str) -> None:
        del self.live[booking_id]

    def free(self, route_id: str, i: int, j: int) -> dict[str, int]:
        route = self.routes[route_id]
        taken = {
            seat
            for rid, seats, bi, bj in self.live.values()
            if rid == route_id and bi < j and i < bj  # the trips share a segment
            for seat in seats
        }
        out: dict[str, int] = {}
        for c in route["coaches"]:
            for row in range(1, c["rows"] + 1):
                for letter in c["letters"]:
                    free = (c["number"], f"{row:02d}{letter}") not in taken
                    out[c["class"]] = out.get(c["class"], 0) + free
        return out

    def search(self, date: str, a: str, b: str) -> list[dict[str, Any]]:
        hits = []
        for rid, route in self.routes.items():
            st = route["stations"]
            if route["date"] == date and a in st and b in st and st.index(a) < st.index(b):
                free = self.free(rid, st.index(a), st.index(b))
                hits.append({"route_id": rid, "train": route["train"], "availability": free})
        return sorted(hits, key=lambda h: (h["train"], h["route_id"]))


def _random_route(rng: random.Random, train: str, date: str, pool: list[str]) -> dict[str, Any]:
    stations = rng.sample(pool, rng.randint(2, len(pool)))  # random subset, random direction
    coaches = [coach("01", "second", rng.randint(1, 2), "AB")]
    if rng.random() < 0.5:
        coaches.append(coach("02", "business", 1, "AC"))
    return {"train": train, "date": date, "stations": stations, "coaches": coaches}


async def _search(api: httpx.AsyncClient, date: str, a: str, b: str) -> list[dict[str, Any]]:
    r = await api.get("/v1/search", params={"from": a, "to": b, "date": date})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["date"], body["from"], body["to"]) == (date, a, b)
    trains: list[dict[str, Any]] = body["trains"]
    return trains


async def _check_every_pair(apis: list[httpx.AsyncClient], model: Model, pool: list[str]) -> int:
    checked = 0
    for date in DATES:
        for a in pool:
            for b in pool:
                if a == b:
                    continue
                expected = model.search(date, a, b)
                for api in apis:
                    assert await _search(api, date, a, b) == expected, (date, a, b)
                checked += bool(expected)
    return checked


async def _book_some(
    api: httpx.AsyncClient,
    token: Tokens,
    rng: random.Random,
    model: Model,
    routes: list[tuple[str, dict[str, Any]]],
    tag: str,
    settle: bool,
) -> list[str]:
    """Random bookings on these routes, each paid or cancelled at once if `settle`;
    returns the ids of those left held."""
    held: list[str] = []
    for n, (rid, route) in enumerate(routes):
        stations = route["stations"]
        i = rng.randrange(len(stations) - 1)
        j = rng.randrange(i + 1, len(stations))
        klass = rng.choice([c["class"] for c in route["coaches"]])
        who = token(f"{tag}-user{n}")
        r = await book(api, rid, who, booking_body(stations[i], stations[j], klass,
                                                  people(f"{tag}-p{n}")))  # fmt: skip
        if r.status_code == 409:
            assert model.free(rid, i, j)[klass] == 0, r.text
            continue
        assert r.status_code == 201, r.text
        booking_id = r.json()["booking_id"]
        model.hold(r.json())
        if not settle:
            held.append(booking_id)
            continue
        auth = {"Authorization": who}
        if rng.random() < 0.4:
            r = await api.delete(f"/v1/bookings/{booking_id}", headers=auth)
            model.release(booking_id)
        else:
            r = await api.post(f"/v1/bookings/{booking_id}/confirm", headers=auth)
        assert r.status_code == 200, r.text
    return held


@pytest.mark.parametrize("seed", [1, 2])
async def test_search_is_exact_after_bookings_cancels_and_expiries_in_both_directions(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids, seed: int
) -> None:
    rng = random.Random(seed)
    # the booking front end reads its own writes; a second one has only what is stored
    api = await app_factory(hold_seconds=3.0, availability_refresh=0.0)
    other = await app_factory(availability_refresh=0.0)
    admin = token("ops", True)
    pool = [f"{train_of(route_id_factory)}-stop{n}" for n in range(6)]
    model = Model()
    for date in DATES:
        for _ in range(4):
            body = _random_route(rng, train_of(route_id_factory), date, pool)
            rid = await create_route(api, admin, body)
            model.add_route({**body, "route_id": rid})
    assert await _check_every_pair([api, other], model, pool) > 0  # all seats free, cold

    booked = rng.sample(sorted(model.routes.items()), 8)
    # bookings, each paid or cancelled at once (well within its hold)
    await _book_some(api, token, rng, model, booked * 3, f"s{seed}", settle=True)
    await _check_every_pair([api, other], model, pool)

    # a burst of holds on those (now running) routes that nobody pays: they run out, and
    # the actors' sweeps store the freed seats
    unpaid = await _book_some(api, token, rng, model, booked * 2, f"e{seed}", settle=False)
    assert unpaid
    await asyncio.sleep(4.0)
    for booking_id in unpaid:
        model.release(booking_id)
    await _check_every_pair([api, other], model, pool)


async def test_searching_cold_and_deactivated_routes_starts_no_actor(
    app_factory: AppFactory,
    token: Tokens,
    route_id_factory: Ids,
    redis_url: str,
) -> None:
    api = await app_factory(idle_seconds=1.0)
    admin = token("ops", True)
    date, pool = "2027-04-01", [f"{train_of(route_id_factory)}-{s}" for s in "XYZ"]
    body = {"date": date, "stations": pool, "coaches": [coach("01", "second", 1, "AB")]}
    cold = [await create_route(api, admin, {**body, "train": train_of(route_id_factory)})]
    cold += [await create_route(api, admin, {**body, "train": train_of(route_id_factory)})]
    warm = await create_route(api, admin, {**body, "train": train_of(route_id_factory)})
    r = await book(api, warm, token("u"), booking_body(pool[0], pool[1], "second", people("w")))
    assert r.status_code == 201, r.text
    for _ in range(40):  # idle 1 s, then it deactivates itself
        await asyncio.sleep(0.25)
        if not _alive(warm):
            break
    assert not _alive(warm), "idle actor still running"

    fresh = await app_factory()  # a front end that never saw any of these routes
    for client in (api, fresh):
        for a, b in ((pool[0], pool[2]), (pool[1], pool[2]), (pool[0], pool[1])):
            trains = await _search(client, date, a, b)
            counts = {t["route_id"]: t["availability"]["second"] for t in trains}
            taken = 1 if (a, b) != (pool[1], pool[2]) else 0  # the booking holds X->Y
            assert counts == {cold[0]: 2, cold[1]: 2, warm: 2 - taken}, (a, b)
    assert _running([*cold, warm]) == set()
    # no activation ever took an epoch for the cold ones
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert not await client.exists(*(keys.epoch(rid) for rid in cold))
    finally:
        await client.aclose()


async def test_a_route_journalled_before_stored_availability_is_replayed_not_woken(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids, redis_url: str
) -> None:
    api = await app_factory()
    date, pool = "2027-04-02", [f"{train_of(route_id_factory)}-{s}" for s in "PQ"]
    body = {"train": train_of(route_id_factory), "date": date, "stations": pool,
            "coaches": [coach("01", "second", 2, "AB")]}  # fmt: skip
    rid = await create_route(api, token("ops", True), body)
    r = await book(api, rid, token("u"), booking_body(pool[0], pool[1], "second", people("l")))
    assert r.status_code == 201, r.text
    ray.kill(ray.get_actor(actor_name(rid), namespace=NAMESPACE), no_restart=True)
    # as a database written before this version: a journal, no stored availability
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.delete(keys.availability(rid))
    finally:
        await client.aclose()
    fresh = await app_factory()
    trains = await _search(fresh, date, pool[0], pool[1])
    assert [(t["route_id"], t["availability"]) for t in trains] == [(rid, {"second": 3})]
    assert not _alive(rid)


async def test_search_filters_by_class_and_seats_and_sorts_by_train(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    date, pool = "2027-04-03", [f"{train_of(route_id_factory)}-{s}" for s in "MN"]
    base = train_of(route_id_factory)
    small = {"train": f"{base}B", "date": date, "stations": pool,
             "coaches": [coach("01", "second", 1, "AB")]}  # fmt: skip
    two = [coach("01", "business", 1, "A"), coach("02", "second", 2, "ABC")]
    big = {**small, "train": f"{base}A", "coaches": two}
    rid_small, rid_big = await create_route(api, admin, small), await create_route(api, admin, big)
    q = {"from": pool[0], "to": pool[1], "date": date}

    async def ids(**extra: str) -> list[str]:
        r = await api.get("/v1/search", params={**q, **extra})
        assert r.status_code == 200, r.text
        return [t["route_id"] for t in r.json()["trains"]]

    assert await ids() == [rid_big, rid_small]  # by train: ...A before ...B
    assert await ids(**{"class": "business"}) == [rid_big]
    assert await ids(seats="2") == [rid_big, rid_small]
    assert await ids(seats="3") == [rid_big]
    assert await ids(**{"class": "business", "seats": "2"}) == []
    assert await ids(**{"class": "second", "seats": "5"}) == [rid_big]
    assert await ids(**{"class": "first"}) == []
    # never a train running the other way
    r = await api.get("/v1/search", params={**q, "from": pool[1], "to": pool[0]})
    assert r.json()["trains"] == []
    # a known station with no train that day: an empty answer, not an error
    r = await api.get("/v1/search", params={**q, "date": "2027-04-04"})
    assert r.status_code == 200 and r.json()["trains"] == []


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({"from": "A", "to": "B"}, 422, "validation"),
        ({"from": "A", "to": "B", "date": ""}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "2026-13-01"}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "2026-12-1"}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "tomorrow"}, 422, "validation"),
        ({"to": "B", "date": "2026-12-01"}, 422, "validation"),
        ({"from": "A", "date": "2026-12-01"}, 422, "validation"),
        ({"from": "A" * 65, "to": "B", "date": "2026-12-01"}, 422, "validation"),
        ({"from": "A", "to": "A", "date": "2026-12-01"}, 422, "bad-trip"),
        ({"from": "No such place", "to": "B", "date": "2026-12-01"}, 404, "not-found"),
        ({"from": "A", "to": "No such place", "date": "2026-12-01"}, 404, "not-found"),
        ({"from": "A", "to": "B", "date": "2026-12-01", "seats": "0"}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "2026-12-01", "seats": "6"}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "2026-12-01", "seats": "two"}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "2026-12-01", "class": ""}, 422, "validation"),
        ({"from": "A", "to": "B", "date": "2026-12-01", "when": "now"}, 422, "validation"),
    ],
)
async def test_bad_searches_are_problems_with_a_sentence(
    api: httpx.AsyncClient,
    token: Tokens,
    route_id_factory: Ids,
    params: dict[str, str],
    status: int,
    slug: str,
) -> None:
    body = {"train": train_of(route_id_factory), "date": "2026-12-01", "stations": ["A", "B"],
            "coaches": [coach("01", "second", 1, "A")]}  # fmt: skip
    await create_route(api, token("ops", True), body)
    problem = assert_problem(await api.get("/v1/search", params=params), status, slug)
    assert problem["detail"].endswith(".")


async def test_a_repeated_query_parameter_is_refused(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/search?from=A&from=B&to=C&date=2026-12-01")
    assert_problem(r, 422, "validation")


async def test_a_front_end_reads_its_own_writes_at_once_and_others_within_the_refresh(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    mine, theirs = await app_factory(), await app_factory()  # default refresh: 0.25 s
    admin, alice = token("ops", True), token("alice")
    date, pool = "2027-04-05", [f"{train_of(route_id_factory)}-{s}" for s in "JK"]
    body = {"train": train_of(route_id_factory), "date": date, "stations": pool,
            "coaches": [coach("01", "second", 2, "AB")]}  # fmt: skip
    rid = await create_route(mine, admin, body)

    async def free(api: httpx.AsyncClient) -> dict[str, int]:
        trains = await _search(api, date, pool[0], pool[1])
        return {t["route_id"]: t["availability"]["second"] for t in trains}

    async def eventually(api: httpx.AsyncClient, expected: dict[str, int]) -> float:
        started = asyncio.get_running_loop().time()
        while (seen := await free(api)) != expected:
            waited = asyncio.get_running_loop().time() - started
            assert waited < 2.0, (seen, expected)
            await asyncio.sleep(0.02)
        return asyncio.get_running_loop().time() - started

    for _ in range(3):  # remembered answers, warm on both front ends
        assert await free(mine) == await free(theirs) == {rid: 4}
    r = await book(mine, rid, alice, booking_body(pool[0], pool[1], "second", people("o1")))
    assert r.status_code == 201, r.text
    assert await free(mine) == {rid: 3}  # at once: its own reply's figures
    assert await eventually(theirs, {rid: 3}) < 1.0
    r = await mine.delete(f"/v1/bookings/{r.json()['booking_id']}",
                          headers={"Authorization": alice})  # fmt: skip
    assert r.status_code == 200, r.text
    assert await free(mine) == {rid: 4}
    assert await eventually(theirs, {rid: 4}) < 1.0
    # a route created through one front end shows in the other's search
    later = await create_route(mine, admin, {**body, "train": train_of(route_id_factory)})
    assert await eventually(theirs, {rid: 4, later: 4}) < 1.0
    assert await eventually(mine, {rid: 4, later: 4}) < 1.0


async def test_scheduled_trains_come_by_departure_with_their_times_then_the_others(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    date, pool = "2027-04-06", [f"{train_of(route_id_factory)}-{s}" for s in "RST"]
    base = train_of(route_id_factory)

    def route(suffix: str, start: int | None) -> dict[str, Any]:
        body = {"train": f"{base}{suffix}", "date": date, "stations": pool,
                "coaches": [coach("01", "second", 1, "AB")]}  # fmt: skip
        if start is not None:  # R at start:00, S at start+1, T at start+3 (past 24: next day)
            body["schedule"] = [
                {"arrive": None, "depart": f"{start:02d}:00"},
                {"arrive": f"{start + 1:02d}:00", "depart": f"{start + 1:02d}:05"},
                {"arrive": f"{start + 3:02d}:30", "depart": None},
            ]
        return body

    late, early, plain = route("A", 22), route("B", 7), route("C", None)
    ids = {}
    for name, body in (("late", late), ("early", early), ("plain", plain)):
        ids[name] = await create_route(api, admin, body)
        r = await api.get(f"/v1/routes/{ids[name]}")
        assert r.json() == {**body, "route_id": ids[name]}  # no schedule given: none shown
    trains = await _search(api, date, pool[1], pool[2])
    assert [t["route_id"] for t in trains] == [ids["early"], ids["late"], ids["plain"]]
    assert [(t.get("departure"), t.get("arrival")) for t in trains] == [
        ("08:05", "10:30"), ("23:05", "25:30"), (None, None),
    ]  # fmt: skip
    assert set(trains[2]) == {"route_id", "train", "availability"}
    bad = {**late, "train": f"{base}D", "schedule": late["schedule"][:2]}
    r = await api.post("/v1/routes", json=bad, headers={"Authorization": admin})
    assert "one entry per station" in assert_problem(r, 422, "validation")["detail"]

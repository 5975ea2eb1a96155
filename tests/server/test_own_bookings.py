"""GET /v1/bookings: the caller's own bookings, exact, paginated, durable across crashes."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
from support.actors import actor_pid, sigkill, wait_for_new_process
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
    route_body,
    train_of,
)

from actors.config import NAMESPACE
from actors.directory import actor_name
from actors.storage.redis_server import EmbeddedRedis


async def own(api: httpx.AsyncClient, auth: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every booking of the caller, walking the pages (asserts 200 and a finite walk)."""
    out: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": limit}
    for _ in range(1000):
        r = await api.get("/v1/bookings", params=params, headers={"Authorization": auth})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["bookings"]) <= limit
        out += page["bookings"]
        if page["next_cursor"] is None:
            return out
        params = {"limit": limit, "cursor": page["next_cursor"]}
    raise AssertionError("the pages never ended")


async def one(api: httpx.AsyncClient, auth: str, booking_id: str) -> dict[str, Any]:
    """The booking as GET /v1/bookings/{id} (its route's actor) answers it."""
    r = await api.get(f"/v1/bookings/{booking_id}", headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _route(train: str) -> dict[str, Any]:
    return route_body(
        train, coaches=[coach("01", "business", 1, "A"), coach("02", "second", 2, "AB")]
    )


async def test_each_user_sees_exactly_their_own_bookings_newest_first(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rng = random.Random(7)
    admin = token("ops", True)
    rids = [await create_route(api, admin, _route(train_of(route_id_factory))) for _ in range(3)]
    tag = train_of(route_id_factory)
    users = {name: token(f"{tag}-{name}") for name in ("ann", "bob", "cat")}
    made: dict[str, list[str]] = {name: [] for name in users}
    for n in range(18):
        name = rng.choice(sorted(users))
        trip = rng.choice([("A", "B"), ("B", "D"), ("A", "D"), ("C", "D")])
        body = booking_body(*trip, rng.choice(["second", "business"]), people(f"{tag}p{n}"),
                            waitlist=True)  # fmt: skip
        r = await book(api, rng.choice(rids), users[name], body)
        assert r.status_code in (201, 202), r.text  # held, or waitlisted when sold out
        made[name].append(r.json()["booking_id"])
        if rng.random() < 0.3:
            r = await api.delete(f"/v1/bookings/{made[name][-1]}",
                                 headers={"Authorization": users[name]})  # fmt: skip
            assert r.status_code == 200, r.text
        elif rng.random() < 0.3:
            # 改签: a changed trip or class shows in the list as the actor has it
            change = {"from": "A", "to": "C", "class": rng.choice(["second", "business"])}
            r = await api.post(f"/v1/bookings/{made[name][-1]}/change", json=change,
                               headers={"Authorization": users[name]})  # fmt: skip
            assert r.status_code in (200, 409), r.text  # sold out, or a waitlisted one
        elif rng.random() < 0.5:
            r = await api.post(f"/v1/bookings/{made[name][-1]}/confirm",
                               headers={"Authorization": users[name]})  # fmt: skip
            assert r.status_code in (200, 409), r.text  # a waitlisted one cannot be paid
    for name, auth in users.items():
        expected = [await one(api, auth, bid) for bid in reversed(made[name])]
        assert await own(api, auth) == expected
        assert await own(api, auth, limit=2) == expected
    nobody = await api.get("/v1/bookings", headers={"Authorization": token(f"{tag}-dan")})
    assert nobody.json() == {"bookings": [], "next_cursor": None}


async def test_pages_neither_skip_nor_repeat_while_new_bookings_arrive(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rids = [await create_route(api, admin, _route(train_of(route_id_factory))) for _ in range(3)]
    auth = token(f"{train_of(route_id_factory)}-walker")
    # at once: bookings in one actor batch share a creation time, pages must still hold
    answers = await asyncio.gather(
        *(book(api, rid, auth, booking_body("A", "B", "second", people(f"w{rid}{n}")))
          for rid in rids for n in range(4))
    )  # fmt: skip
    assert {r.status_code for r in answers} == {201}
    everything = await own(api, auth)
    assert {b["booking_id"] for b in everything} == {r.json()["booking_id"] for r in answers}
    assert [b["created_at"] for b in everything] == sorted(
        (b["created_at"] for b in everything), reverse=True
    )
    assert await own(api, auth, limit=1) == everything

    # walk in pages of 5, with new bookings landing between the pages
    seen: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"limit": 5}
    while True:
        r = await api.get("/v1/bookings", params=params, headers={"Authorization": auth})
        page = r.json()
        seen += page["bookings"]
        if page["next_cursor"] is None:
            break
        params = {"limit": 5, "cursor": page["next_cursor"]}
        r = await book(
            api, rids[0], auth, booking_body("C", "D", "business", people(f"n{len(seen)}"))
        )
        assert r.status_code in (201, 409), r.text
    assert [b["booking_id"] for b in seen] == [b["booking_id"] for b in everything]
    newer = await own(api, auth)
    assert newer[len(newer) - len(everything) :] == everything


async def test_own_bookings_survive_an_actor_sigkill(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    api = await app_factory()
    rid = await create_route(api, token("ops", True), _route(train_of(route_id_factory)))
    auth = token(f"{rid}-killed")
    ids = []
    for n in range(3):
        r = await book(api, rid, auth, booking_body("A", "C", "second", people(f"k{rid}{n}")))
        assert r.status_code == 201, r.text
        ids.append(r.json()["booking_id"])
    before = await own(api, auth)
    handle = ray.get_actor(actor_name(rid), namespace=NAMESPACE)
    old = await actor_pid(handle)
    sigkill(old)
    # read at once: the list needs no actor, dead or alive
    assert await own(api, auth) == before
    await wait_for_new_process(handle, old)
    r = await api.delete(f"/v1/bookings/{ids[1]}", headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    after = await own(api, auth)
    assert [b["status"] for b in after] == ["held", "cancelled", "held"]
    assert after == [await one(api, auth, bid) for bid in reversed(ids)]


@contextlib.asynccontextmanager
async def _app(url: str, data_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    from conftest import JWT_SECRET

    from server.app import create_app
    from server.boot.runtime import Runtime
    from server.settings import Settings

    settings = Settings(redis_url=url, jwt_secret=JWT_SECRET, data_dir=data_dir)
    app = create_app(settings, Runtime(settings))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://ticketd.test") as c:
            yield c


@pytest.mark.usefixtures("ray_local")
async def test_own_bookings_survive_a_full_restart(
    tmp_path: Path, token: Tokens, route_id_factory: Ids
) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server = EmbeddedRedis(redis_dir)
    server.start()
    try:
        async with _app(server.url, tmp_path) as api:
            rids = [await create_route(api, token("ops", True), _route(train_of(route_id_factory)))
                    for _ in range(2)]  # fmt: skip
            auth = token(f"{rids[0]}-restarted")
            for n, rid in enumerate(rids * 2):
                r = await book(api, rid, auth, booking_body("B", "D", "second", people(f"r{n}")))
                assert r.status_code == 201, r.text
            first = (await own(api, auth))[-1]["booking_id"]
            r = await api.post(f"/v1/bookings/{first}/confirm", headers={"Authorization": auth})
            assert r.status_code == 200, r.text
            before = await own(api, auth)
        # everything goes: actors, front end, Redis (a clean stop, then the same AOF)
        for rid in rids:
            ray.kill(ray.get_actor(actor_name(rid), namespace=NAMESPACE), no_restart=True)
        server.stop()
        server = EmbeddedRedis(redis_dir)
        server.start()
        async with _app(server.url, tmp_path) as api:
            assert await own(api, auth) == before
            assert before[-1]["status"] == "confirmed"
            assert [await one(api, auth, b["booking_id"]) for b in before] == before
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("query", "slug"),
    [
        ("limit=0", "validation"),
        ("limit=101", "validation"),
        ("limit=ten", "validation"),
        ("cursor=bm90LWEtY3Vyc29y", "validation"),
        ("cursor=%%%", "validation"),
        ("user=someone-else", "validation"),
    ],
)
async def test_bad_own_bookings_requests_are_problems(
    api: httpx.AsyncClient, token: Tokens, query: str, slug: str
) -> None:
    r = await api.get(f"/v1/bookings?{query}", headers={"Authorization": token("alice")})
    assert_problem(r, 422, slug)


async def test_own_bookings_need_a_token(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/bookings"), 401, "unauthorized")
    r = await api.get("/v1/bookings", headers={"Authorization": "Bearer nonsense"})
    assert_problem(r, 401, "unauthorized")

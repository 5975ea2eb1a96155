"""Booking lifecycle through the HTTP app: holds expire (even with the actor down),
confirm races the deadline, and the waitlist is served in order across restarts."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest
import ray
import redis.asyncio
from support.actors import actor_config
from support.http import (
    AppFactory,
    Ids,
    Tokens,
    availability,
    book,
    booking_body,
    coach,
    create_route,
    people,
    route_body,
)

from actors.config import NAMESPACE
from actors.directory import Directory, actor_name
from actors.domain.messages import Expired, decode_events
from actors.storage import keys
from server.app import redis_client
from server.dispatch.gateway import Gateway
from server.settings import Settings


async def _route(api: httpx.AsyncClient, token: Tokens, rid: str, seats: int) -> str:
    body = route_body(rid.split("-")[0], coaches=[coach("01", "second", 1, "ABCDF"[:seats])])
    return await create_route(api, token("ops", True), body)


async def _book(
    api: httpx.AsyncClient,
    token: Tokens,
    rid: str,
    user: str,
    pax: list[str],
    trip: tuple[str, str] = ("A", "D"),
    waitlist: bool = False,
) -> httpx.Response:
    body = booking_body(*trip, "second", people(*pax), waitlist=waitlist)
    return await book(api, rid, token(user), body, key=f"{user}-{'-'.join(pax)}")


async def _free(api: httpx.AsyncClient, rid: str, trip: tuple[str, str] = ("A", "D")) -> int:
    return (await availability(api, rid, *trip))["second"]


async def _status(api: httpx.AsyncClient, token: Tokens, user: str, bid: str) -> str:
    r = await api.get(f"/v1/bookings/{bid}", headers={"Authorization": token(user)})
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


async def test_unpaid_hold_expires_on_time_without_any_request(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    api = await app_factory(hold_seconds=1.0)
    rid = await _route(api, token, route_id_factory(), seats=1)
    r = await _book(api, token, rid, "u1", ["p1"])
    assert r.status_code == 201
    assert await _free(api, rid) == 0
    await asyncio.sleep(2.0)  # no request touches the route meanwhile
    # the availability read is served by the actor's last matrix: the sweep already ran
    assert await _free(api, rid) == 1
    assert await _status(api, token, "u1", r.json()["booking_id"]) == "expired"


async def test_hold_expires_while_its_actor_is_down(
    app_factory: AppFactory,
    token: Tokens,
    route_id_factory: Ids,
    redis_client: redis.asyncio.Redis,
) -> None:
    api = await app_factory(hold_seconds=1.0)
    rid = await _route(api, token, route_id_factory(), seats=1)
    r = await _book(api, token, rid, "u1", ["p1"])
    bid = r.json()["booking_id"]
    ray.kill(ray.get_actor(actor_name(rid), namespace=NAMESPACE), no_restart=True)
    # the deadline passes with no actor at all; the front end's keeper must notice
    expired = False
    for _ in range(40):
        await asyncio.sleep(0.25)
        entries = await redis_client.xrange(keys.journal(rid))
        events = [e for _, f in entries for e in decode_events(f[b"e"])]
        if any(isinstance(e, Expired) and e.booking_id == bid for e in events):
            expired = True
            break
    assert expired, "no Expired event journalled after the deadline"
    assert await redis_client.zscore(keys.HOLDS, rid) is None
    assert await _free(api, rid) == 1


async def test_confirm_before_deadline_wins_and_after_it_loses(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    api = await app_factory(hold_seconds=1.0)
    rid = await _route(api, token, route_id_factory(), seats=2)
    paid = (await _book(api, token, rid, "u1", ["p1"])).json()["booking_id"]
    late = (await _book(api, token, rid, "u2", ["p2"])).json()["booking_id"]
    r = await api.post(f"/v1/bookings/{paid}/confirm", headers={"Authorization": token("u1")})
    assert r.status_code == 200 and r.json()["status"] == "confirmed"
    await asyncio.sleep(1.5)
    r = await api.post(f"/v1/bookings/{late}/confirm", headers={"Authorization": token("u2")})
    assert r.status_code == 409
    assert r.json()["type"] == "hold-expired"
    assert await _status(api, token, "u1", paid) == "confirmed"
    assert await _free(api, rid) == 1


async def test_waitlist_is_served_in_order_when_seats_free_up(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rid = await _route(api, token, route_id_factory(), seats=2)
    holder = (await _book(api, token, rid, "h", ["h1", "h2"])).json()["booking_id"]
    big = await _book(api, token, rid, "w1", ["a1", "a2", "a3"], waitlist=True)
    small = await _book(api, token, rid, "w2", ["b1"], waitlist=True)
    later = await _book(api, token, rid, "w3", ["c1"], waitlist=True)
    assert [x.status_code for x in (big, small, later)] == [202, 202, 202]
    assert small.json()["status"] == "waitlisted" and small.json()["seats"] == []
    r = await api.delete(f"/v1/bookings/{holder}", headers={"Authorization": token("h")})
    assert r.status_code == 200
    # two seats free: the group of three does not fit, the next two in line are served
    assert await _status(api, token, "w1", big.json()["booking_id"]) == "waitlisted"
    assert await _status(api, token, "w2", small.json()["booking_id"]) == "held"
    assert await _status(api, token, "w3", later.json()["booking_id"]) == "held"


async def test_waitlist_survives_an_actor_restart(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rid = await _route(api, token, route_id_factory(), seats=1)
    holder = (await _book(api, token, rid, "h", ["h1"])).json()["booking_id"]
    waiting = (await _book(api, token, rid, "w", ["w1"], waitlist=True)).json()["booking_id"]
    handle = ray.get_actor(actor_name(rid), namespace=NAMESPACE)
    pid = (await handle.info.remote())["pid"]
    import os
    import signal

    os.kill(pid, signal.SIGKILL)  # Ray restarts it; it recovers from Redis
    for _ in range(60):
        r = await api.delete(f"/v1/bookings/{holder}", headers={"Authorization": token("h")})
        if r.status_code == 200:
            break
        assert r.status_code == 503, r.text
        await asyncio.sleep(0.25)
    assert await _status(api, token, "w", waiting) == "held"


@pytest.mark.parametrize("trip", [("A", "B"), ("C", "D")])
async def test_waitlisted_trip_only_needs_its_own_segments(
    api: httpx.AsyncClient,
    token: Tokens,
    route_id_factory: Ids,
    trip: tuple[str, str],
) -> None:
    rid = await _route(api, token, route_id_factory(), seats=1)
    first = (await _book(api, token, rid, "h1", ["x1"], trip=("A", "B"))).json()["booking_id"]
    await _book(api, token, rid, "h2", ["x2"], trip=("B", "D"))
    waiting = (await _book(api, token, rid, "w", ["w1"], trip=trip, waitlist=True)).json()
    r = await api.delete(f"/v1/bookings/{first}", headers={"Authorization": token("h1")})
    assert r.status_code == 200
    # cancelling A-B frees only segment A-B: an A-B request is served, a C-D one waits
    expected = "held" if trip == ("A", "B") else "waitlisted"
    assert await _status(api, token, "w", waiting["booking_id"]) == expected


async def test_the_hold_keeper_stops_when_cancelled_in_the_middle_of_a_redis_call(
    redis_url: str, tmp_path: Path
) -> None:
    # Python 3.11's wait_for (redis-py writes through it) can swallow a cancel that lands
    # as the write completes; a keeper that ran on would hold shutdown up and open
    # connections after its client was closed. Cancel it at many random points.
    client = redis_client(redis_url)
    settings = Settings(redis_url=redis_url, jwt_secret="k" * 32, data_dir=tmp_path)
    gateway = Gateway(settings, client, Directory(actor_config(redis_url)))
    rng = random.Random(7)
    try:
        for attempt in range(150):
            keeper = asyncio.create_task(gateway.keep_holds(interval=0))
            await asyncio.sleep(rng.random() * 0.01)
            keeper.cancel()
            done, _ = await asyncio.wait({keeper}, timeout=2)
            assert done, f"the keeper ran on after its cancel (attempt {attempt})"
            assert keeper.cancelled()
    finally:
        await client.aclose()

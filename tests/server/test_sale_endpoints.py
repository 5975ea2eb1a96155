"""Sales and their waiting rooms over HTTP: a running sale's routes are booked only with
an admission, the pre-queue is drawn at the opening and later joiners follow in order,
an operator pauses, resumes and closes, polls faster than advised get 429."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
from conftest import PLANE_SECRET
from support.http import (
    STATIONS,
    assert_problem,
    book,
    booking_body,
    coach,
    create_route,
    people,
    route_body,
    train_of,
)

from server.waiting.tokens import Admission, Signer

Tokens = Callable[..., str]
Ids = Callable[[], str]


def _at(seconds: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


async def _sale(api: httpx.AsyncClient, admin: str, routes: list[str], opens_in: float,
                rate: float | None = 1000.0) -> dict[str, Any]:  # fmt: skip
    body = {"routes": routes, "opens_at": _at(opens_in), "admit_per_second": rate}
    r = await api.post("/v1/sales", json=body, headers={"Authorization": admin})
    assert r.status_code == 201, r.text
    sale: dict[str, Any] = r.json()
    return sale


async def _until(check: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "it did not happen in time"
        await asyncio.sleep(0.1)


async def _state(api: httpx.AsyncClient, sale_id: str, auth: str) -> str:
    r = await api.get(f"/v1/sales/{sale_id}", headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    state: str = r.json()["state"]
    return state


async def _drawn(api: httpx.AsyncClient, sale_id: str, auth: str, queued: int) -> bool:
    """Open, and its pre-queue drawn (a keeper's pass, a moment after its time)."""
    r = await api.get(f"/v1/sales/{sale_id}", headers={"Authorization": auth})
    return bool(r.json()["state"] == "open" and r.json()["queued"] >= queued)


async def test_a_running_sale_s_routes_are_booked_only_with_an_admission(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice, bob = token("ops", admin=True), token("alice"), token("bob")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sale = await _sale(api, admin, [rid], opens_in=1.0)
    sid = sale["sale_id"]
    assert sale["state"] == "scheduled"
    joined = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": alice})
    assert joined.status_code == 200, joined.text
    assert (joined.json()["state"], joined.json()["place"]) == ("not-open", None)
    # before the opening nobody is admitted, so nobody books ahead of the queue
    early = booking_body(STATIONS[0], STATIONS[1], "second", people("p0"))
    assert_problem(await book(api, rid, alice, early), 403, "not-admitted")

    async def admitted() -> bool:  # drawn, and the frontier moved past her (next pass)
        r = await api.get(f"/v1/sales/{sid}", headers={"Authorization": alice})
        return bool(r.json()["state"] == "open" and r.json()["admitted"] >= 1)

    await _until(admitted)
    trip = booking_body(STATIONS[0], STATIONS[1], "second", people("p1"))
    refused = assert_problem(await book(api, rid, alice, trip), 403, "not-admitted")
    assert f"POST /v1/sales/{sid}/queue" in refused["detail"]
    polled = await api.get(f"/v1/sales/{sid}/queue", headers={"Authorization": alice})
    answer = polled.json()
    assert (answer["state"], answer["place"]) == ("admitted", 1), answer
    admission = answer["admission"]
    headers = {"Authorization": alice, "Admission": admission, "Idempotency-Key": "k1"}
    r = await api.post(f"/v1/routes/{rid}/bookings", json=trip, headers=headers)
    assert r.status_code == 201, r.text
    # an expired one (made with the cluster's key, as the app's own)
    expired = Signer(PLANE_SECRET).admission(Admission(sid, "alice", time.time() - 1))
    headers = {"Authorization": alice, "Admission": expired, "Idempotency-Key": "k3"}
    late = assert_problem(await api.post(f"/v1/routes/{rid}/bookings", json=trip,
                                         headers=headers), 403, "not-admitted")  # fmt: skip
    assert "it has expired" in late["detail"]
    # someone else's, and a forged one
    for stolen in (admission, admission[:-2] + ("AA" if admission[-2:] != "AA" else "BB")):
        headers = {"Authorization": bob, "Admission": stolen, "Idempotency-Key": "k2"}
        assert_problem(await api.post(f"/v1/routes/{rid}/bookings", json=trip, headers=headers),
                       403, "not-admitted")  # fmt: skip


async def test_the_pre_queue_is_drawn_at_the_opening_and_later_joiners_follow_in_order(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", admin=True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await _sale(api, admin, [rid], opens_in=1.0, rate=0.5))["sale_id"]
    early = [token(f"e{n}") for n in range(30)]
    for auth in early:
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": auth})
        assert r.json()["state"] == "not-open"

    async def opened() -> bool:
        return await _drawn(api, sid, admin, 30)

    await _until(opened)
    late = [token(f"l{n}") for n in range(10)]
    late_places = []
    for auth in late:
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": auth})
        late_places.append(r.json()["place"])
    assert late_places == list(range(31, 41))
    places = []
    for auth in early:  # joining again answers the same place, now drawn
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": auth})
        places.append(r.json()["place"])
    assert sorted(places) == list(range(1, 31)) and places != list(range(1, 31))
    # the last of them waits, with people ahead and an estimate
    waiting = await api.get(f"/v1/sales/{sid}/queue", headers={"Authorization": late[-1]})
    got = waiting.json()
    assert got["state"] == "waiting" and got["ahead"] >= 30, got


async def test_an_operator_pauses_resumes_and_closes_a_sale(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await _sale(api, admin, [rid], opens_in=0.0))["sale_id"]
    path, auth = f"/v1/sales/{sid}", {"Authorization": admin}
    assert_problem(await api.patch(path, json={"state": "paused"},
                                   headers={"Authorization": alice}), 403, "forbidden")  # fmt: skip
    r = await api.patch(path, json={"state": "paused"}, headers=auth)
    assert r.status_code == 200 and r.json()["state"] == "paused", r.text
    r = await api.patch(path, json={"state": "open", "admit_per_second": 5}, headers=auth)
    assert (r.json()["state"], r.json()["admit_per_second"]) == ("open", 5), r.text
    r = await api.patch(path, json={"state": "closed"}, headers=auth)
    assert r.json()["state"] == "closed", r.text
    assert_problem(await api.patch(path, json={"state": "open"}, headers=auth), 409,
                   "invalid-state")  # fmt: skip
    assert_problem(await api.post(f"{path}/queue", headers={"Authorization": alice}), 409,
                   "invalid-state")  # fmt: skip
    # closed: its route is free again, for booking without admission and for a new sale
    trip = booking_body(STATIONS[0], STATIONS[1], "second", people("p9"))
    assert (await book(api, rid, alice, trip)).status_code == 201
    await _sale(api, admin, [rid], opens_in=60)


async def test_a_sale_of_routes_that_cannot_be_in_it_says_why(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", admin=True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    body = {"routes": [rid], "opens_at": _at(60)}
    user = {"Authorization": token("u")}
    assert_problem(await api.post("/v1/sales", json=body, headers=user), 403, "forbidden")
    await _sale(api, admin, [rid], opens_in=60)
    assert_problem(await api.post("/v1/sales", json=body, headers={"Authorization": admin}),
                   409, "sale-conflict")  # fmt: skip
    missing = {"routes": ["NOPE9-20261201"], "opens_at": _at(60)}
    assert_problem(await api.post("/v1/sales", json=missing, headers={"Authorization": admin}),
                   404, "not-found")  # fmt: skip
    assert_problem(await api.get("/v1/sales/Snope", headers={"Authorization": admin}), 404)


async def test_polling_faster_than_advised_gets_429_with_retry_after(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await _sale(api, admin, [rid], opens_in=600))["sale_id"]
    await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": alice})
    first = await api.get(f"/v1/sales/{sid}/queue", headers={"Authorization": alice})
    assert first.status_code == 200 and first.json()["poll_after_seconds"] >= 1
    again = await api.get(f"/v1/sales/{sid}/queue", headers={"Authorization": alice})
    assert_problem(again, 429, "polling-too-fast")
    assert int(again.headers["Retry-After"]) >= 1


async def test_a_sold_out_sale_tells_everybody_still_waiting_and_offers_the_waitlist(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", admin=True)
    small = route_body(train_of(route_id_factory), coaches=[coach("01", "second", 1, "AB")])
    rid = await create_route(api, admin, small)
    sid = (await _sale(api, admin, [rid], opens_in=0.5, rate=1.0))["sale_id"]
    users = {name: token(name) for name in ("u1", "u2", "u3", "u4")}
    tickets = {}
    for name, auth in users.items():
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": auth})
        tickets[name] = r.json()["ticket"]

    async def opened() -> bool:
        return await _drawn(api, sid, admin, 4)

    await _until(opened)

    async def poll(name: str) -> dict[str, Any]:
        headers = {"Authorization": users[name], "Queue-Ticket": tickets[name]}
        r = await api.get(f"/v1/sales/{sid}/queue", headers=headers)
        assert r.status_code == 200, r.text
        got: dict[str, Any] = r.json()
        return got

    async def rejoin(name: str) -> dict[str, Any]:  # answers like a poll, never 429
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": users[name]})
        assert r.status_code == 200, r.text
        got: dict[str, Any] = r.json()
        return got

    # one user a second: the first admitted buys the whole train
    places = {name: (await rejoin(name))["place"] for name in users}
    first = min(places, key=places.__getitem__)

    async def admitted() -> bool:
        return bool((await rejoin(first))["state"] == "admitted")

    await _until(admitted)
    admission = (await rejoin(first))["admission"]
    whole = booking_body(STATIONS[0], STATIONS[-1], "second", people("p1", "p2"))
    headers = {"Authorization": users[first], "Admission": admission, "Idempotency-Key": "s1"}
    bought = await api.post(f"/v1/routes/{rid}/bookings", json=whole, headers=headers)
    assert bought.status_code == 201, bought.text

    async def sold_out() -> bool:
        return await _state(api, sid, admin) == "sold-out"

    await _until(sold_out, seconds=5)
    # everybody still waiting hears it on their next poll, from any place in the line
    others = [name for name in users if name != first]
    offers = {}
    for name in others:
        heard = await poll(name)
        assert (heard["state"], heard["waitlist"]) == ("sold-out", True), heard
        assert heard["admission"] and heard["ahead"] is None, heard
        offers[name] = heard["admission"]
    # the offer admits a waitlisted booking, and nothing else
    last = others[-1]
    offer = offers[last]
    headers = {"Authorization": users[last], "Admission": offer, "Idempotency-Key": "w1"}
    trip = booking_body(STATIONS[0], STATIONS[1], "second", people("p9"))
    refused = assert_problem(
        await api.post(f"/v1/routes/{rid}/bookings", json=trip, headers=headers),
        403, "not-admitted",
    )  # fmt: skip
    assert '"waitlist": true' in refused["detail"]
    waiting = {**trip, "waitlist": True}
    r = await api.post(f"/v1/routes/{rid}/bookings", json=waiting, headers=headers)
    assert r.status_code == 202 and r.json()["status"] == "waitlisted", r.text
    waitlisted = r.json()["booking_id"]
    # a seat given back goes to the waitlist
    path = f"/v1/bookings/{bought.json()['booking_id']}"
    assert (await api.delete(path, headers={"Authorization": users[first]})).status_code == 200
    r = await api.get(f"/v1/bookings/{waitlisted}", headers={"Authorization": users[last]})
    assert r.json()["status"] == "held", r.text

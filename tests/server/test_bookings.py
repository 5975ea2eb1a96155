"""Booking over HTTP: holds, payment, cancel, change, waitlist, idempotency and the limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest
from support.http import (
    AppFactory,
    Ids,
    Tokens,
    admin_list,
    assert_problem,
    availability,
    book,
    booking_body,
    coach,
    create_route,
    people,
    route_body,
    train_of,
)

BOOKING_FIELDS = {
    "booking_id", "route_id", "status", "from", "to", "class", "seats", "hold_expires_at",
    "created_at",
}  # fmt: skip


def _at(iso: str) -> dt.datetime:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


async def test_a_booking_is_held_then_readable_confirmable_and_cancellable(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    alice = {"Authorization": token("alice")}
    before = dt.datetime.now(dt.UTC)
    r = await book(
        api, rid, alice["Authorization"], booking_body("A", "C", "second", people("a1", "a2"))
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    held = r.json()
    assert set(held) == BOOKING_FIELDS
    assert held["booking_id"].startswith(f"{rid}-")
    trip = {"route_id": rid, "status": "held", "from": "A", "to": "C", "class": "second"}
    assert {k: held[k] for k in trip} == trip
    assert [s["passenger"] for s in held["seats"]] == [0, 1]
    assert {s["coach"] for s in held["seats"]} == {"02"}  # the second-class coach
    assert len({s["seat"] for s in held["seats"]}) == 2
    # the default hold is 600 s
    hold = (_at(held["hold_expires_at"]) - before).total_seconds()
    assert 590 < hold < 610, held
    assert await availability(api, rid, "A", "C") == {"business": 2, "second": 2}

    path = f"/v1/bookings/{held['booking_id']}"
    r = await api.get(path, headers=alice)
    assert r.status_code == 200, r.text
    assert r.json() == held

    r = await api.post(f"{path}/confirm", headers=alice)
    assert r.status_code == 200, r.text
    confirmed = r.json()
    assert confirmed == {**held, "status": "confirmed", "hold_expires_at": None}
    again = await api.post(f"{path}/confirm", headers=alice)  # paying twice changes nothing
    assert (again.status_code, again.json()) == (200, confirmed)

    r = await api.delete(path, headers=alice)
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled == {**confirmed, "status": "cancelled"}
    assert await availability(api, rid, "A", "C") == {"business": 2, "second": 4}
    again = await api.delete(path, headers=alice)
    assert (again.status_code, again.json()) == (200, cancelled)

    problem = assert_problem(await api.post(f"{path}/confirm", headers=alice), 409, "invalid-state")
    assert problem["status"] == 409 and "cancelled" in problem["detail"]
    change = {"from": "A", "to": "B", "class": "second"}
    assert_problem(
        await api.post(f"{path}/change", json=change, headers=alice), 409, "invalid-state"
    )
    assert (await api.get(path, headers=alice)).json() == cancelled


async def test_an_expired_hold_cannot_be_paid_and_frees_its_seats(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    api = await app_factory(hold_seconds=1)
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    alice = {"Authorization": token("alice")}
    r = await book(
        api, rid, alice["Authorization"], booking_body("A", "D", "business", people("a"))
    )
    assert r.status_code == 201, r.text
    held = r.json()
    assert (_at(held["hold_expires_at"]) - _at(held["created_at"])).total_seconds() == 1
    path = f"/v1/bookings/{held['booking_id']}"
    for _ in range(40):  # the actor sweeps expired holds every 0.25 s
        await asyncio.sleep(0.1)
        if (await api.get(path, headers=alice)).json()["status"] == "expired":
            break
    r = await api.get(path, headers=alice)
    assert r.json() == {**held, "status": "expired", "hold_expires_at": None}
    assert_problem(await api.post(f"{path}/confirm", headers=alice), 409, "hold-expired")
    assert await availability(api, rid, "A", "D") == {"business": 2, "second": 4}


async def test_sold_out_is_409_and_waitlisted_requests_get_seats_in_fifo_order(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    route = route_body(train_of(route_id_factory), coaches=[coach("01", "second", 1, "A")])
    rid = await create_route(api, token("ops", True), route)
    r = await book(api, rid, token("u0"), booking_body("A", "D", "second", people("p0")))
    assert r.status_code == 201, r.text
    first = r.json()

    answers = []
    # at once (from the front end's fresh availability snapshot, no actor call), and once
    # the snapshot is stale (the actor decides): the same problem either way
    for pause in (0.0, 0.4):
        await asyncio.sleep(pause)
        r = await book(api, rid, token("u1"), booking_body("B", "C", "second", people("p1")))
        answers.append(assert_problem(r, 409, "sold-out"))
    assert answers[0] == answers[1]
    trip = {"route_id": rid, "class": "second", "from": "B", "to": "C", "wanted": 1}
    assert {k: answers[0][k] for k in trip} == trip

    waiting = []
    for n in (1, 2):
        body = booking_body("B", "C", "second", people(f"w{n}"), waitlist=True)
        r = await book(api, rid, token(f"w{n}"), body)
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "waitlisted"
        assert r.json()["seats"] == [] and r.json()["hold_expires_at"] is None
        waiting.append(r.json()["booking_id"])

    r = await api.delete(
        f"/v1/bookings/{first['booking_id']}", headers={"Authorization": token("u0")}
    )
    assert r.status_code == 200, r.text
    r = await api.get(f"/v1/bookings/{waiting[0]}", headers={"Authorization": token("w1")})
    served = r.json()
    assert served["status"] == "held" and served["seats"] == first["seats"], served
    assert served["hold_expires_at"] is not None
    r = await api.get(f"/v1/bookings/{waiting[1]}", headers={"Authorization": token("w2")})
    assert r.json()["status"] == "waitlisted"
    # the waitlisted booking was served through the actor: the snapshot knows the seat is gone
    r = await book(api, rid, token("u3"), booking_body("A", "B", "second", people("p3")))
    assert r.status_code == 201, r.text
    assert await availability(api, rid, "B", "C") == {"second": 0}


async def test_a_repeated_key_gets_the_first_answer_and_a_reused_key_is_422(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    alice = token("alice")
    body = booking_body("A", "B", "second", people("a1"), seat_letters=["A"], together=False)
    first = await book(api, rid, alice, body, key="order-1")
    assert first.status_code == 201, first.text

    again = await book(api, rid, alice, body, key="order-1")
    assert (again.status_code, again.content) == (first.status_code, first.content)
    # the same request spelled differently (order, spacing, defaults) is still the same request
    raw = json.dumps(dict(reversed(list({**body, "waitlist": False}.items()))), indent=3)
    headers = {
        "Authorization": alice,
        "Idempotency-Key": "order-1",
        "Content-Type": "application/json",
    }
    r = await api.post(f"/v1/routes/{rid}/bookings", content=raw, headers=headers)
    assert (r.status_code, r.content) == (first.status_code, first.content)
    # the first answer is repeated even after the booking moved on
    bid = first.json()["booking_id"]
    r = await api.post(f"/v1/bookings/{bid}/confirm", headers={"Authorization": alice})
    assert r.status_code == 200, r.text
    r = await book(api, rid, alice, body, key="order-1")
    assert (r.status_code, r.content) == (first.status_code, first.content)

    other = booking_body("A", "B", "second", people("a2"))
    r = await book(api, rid, alice, other, key="order-1")
    assert assert_problem(r, 422, "idempotency-mismatch")["key"] == "order-1"
    # keys belong to their user: bob's order-1 is a booking of its own
    r = await book(api, rid, token("bob"), other, key="order-1")
    assert r.status_code == 201, r.text
    assert r.json()["booking_id"] != bid

    bookings = await admin_list(api, rid, admin)
    assert sorted(b["user"] for b in bookings) == ["alice", "bob"]


@pytest.mark.parametrize(
    ("key", "type_"),
    [
        (None, "missing-idempotency-key"),
        ("", "bad-request"),
        ("has space", "bad-request"),
        ("k" * 129, "bad-request"),
    ],
)
async def test_booking_without_a_usable_idempotency_key_is_400(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids, key: str | None, type_: str
) -> None:
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    headers = {"Authorization": token("alice")}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = booking_body("A", "B", "second", people("a1"))
    r = await api.post(f"/v1/routes/{rid}/bookings", json=body, headers=headers)
    assert_problem(r, 400, type_)


async def test_invalid_booking_requests_are_422_and_book_nothing(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    alice = token("alice")
    before = await availability(api, rid, "A", "D")

    def body(**changes: Any) -> dict[str, Any]:
        return {**booking_body("A", "C", "second", people("a1")), **changes}

    cases: list[tuple[dict[str, Any], str]] = [
        (body(**{"class": "first"}), "unknown-class"),
        (body(**{"class": "Second"}), "unknown-class"),
        (body(passengers=[]), "validation"),
        (body(passengers=people("1", "2", "3", "4", "5", "6")), "validation"),
        (body(passengers=people("d", "d")), "validation"),
        (body(passengers=[{"name": "", "id": "x"}]), "validation"),
        (body(passengers=[{"name": "N", "id": "has space"}]), "validation"),
        (body(passengers=[{"name": "N"}]), "validation"),
        (body(**{"from": "Z"}), "unknown-station"),
        (body(to="Nowhere"), "unknown-station"),
        (body(**{"from": "C", "to": "A"}), "bad-trip"),
        (body(**{"from": "B", "to": "B"}), "bad-trip"),
        (body(seat_letters=["Z"]), "validation"),
        (body(seat_letters=["a"]), "validation"),
        (body(waitlist="yes"), "validation"),
        ({k: v for k, v in body().items() if k != "class"}, "validation"),
    ]
    for request, type_ in cases:
        r = await book(api, rid, alice, request)
        assert_problem(r, 422, type_)
    assert await admin_list(api, rid, admin) == []
    assert await availability(api, rid, "A", "D") == before

    body_ok = booking_body("A", "B", "second", people("a1"))
    assert_problem(await book(api, "NOPE2-20261201", alice, body_ok), 404, "not-found")


async def test_a_passenger_cannot_hold_two_overlapping_trips_on_a_route(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    r = await book(api, rid, token("alice"), booking_body("A", "C", "second", people("li")))
    assert r.status_code == 201, r.text
    bid = r.json()["booking_id"]
    # the same traveller, booked by someone else, in another class, on an overlapping trip
    r = await book(api, rid, token("bob"), booking_body("B", "D", "business", people("zz", "li")))
    problem = assert_problem(r, 409, "passenger-conflict")
    assert (problem["passenger_id"], problem["booking_id"]) == ("li", bid)
    # back to back is fine
    r = await book(api, rid, token("bob"), booking_body("C", "D", "second", people("li")))
    assert r.status_code == 201, r.text
    # and once the first trip is cancelled the overlap is free
    r = await api.delete(f"/v1/bookings/{bid}", headers={"Authorization": token("alice")})
    assert r.status_code == 200, r.text
    r = await book(api, rid, token("bob"), booking_body("B", "C", "business", people("li")))
    assert r.status_code == 201, r.text


async def test_a_user_holds_at_most_five_passenger_seats_per_route(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    coaches = [coach("01", "second", 4, "ABCD")]
    rid = await create_route(
        api, token("ops", True), route_body(train_of(route_id_factory), coaches=coaches)
    )
    alice = token("alice")
    r = await book(api, rid, alice, booking_body("A", "B", "second", people("1", "2", "3")))
    assert r.status_code == 201, r.text
    first = r.json()["booking_id"]
    r = await book(api, rid, alice, booking_body("C", "D", "second", people("4", "5")))
    assert r.status_code == 201, r.text

    r = await book(api, rid, alice, booking_body("B", "C", "second", people("6")))
    problem = assert_problem(r, 429, "too-many-bookings")
    assert (problem["live"], problem["cap"]) == (5, 5)
    assert r.headers["retry-after"] == "60"
    # waitlisting counts too
    body = booking_body("B", "C", "second", people("6"), waitlist=True)
    assert_problem(await book(api, rid, alice, body), 429, "too-many-bookings")
    # others are not limited by alice
    r = await book(api, rid, token("bob"), booking_body("B", "C", "second", people("6")))
    assert r.status_code == 201, r.text
    # a cancel gives alice room again
    r = await api.delete(f"/v1/bookings/{first}", headers={"Authorization": alice})
    assert r.status_code == 200, r.text
    r = await book(api, rid, alice, booking_body("B", "C", "second", people("7", "8", "9")))
    assert r.status_code == 201, r.text


async def test_change_moves_a_booking_atomically_or_leaves_it_intact(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    coaches = [coach("01", "business", 1, "A"), coach("02", "second", 2, "AB")]
    route = route_body(train_of(route_id_factory), coaches=coaches)
    rid = await create_route(api, token("ops", True), route)
    alice = {"Authorization": token("alice")}
    r = await book(api, rid, alice["Authorization"], booking_body("A", "B", "second", people("a")))
    assert r.status_code == 201, r.text
    held = r.json()
    path = f"/v1/bookings/{held['booking_id']}/change"

    r = await api.post(path, json={"from": "A", "to": "D", "class": "business"}, headers=alice)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed == {
        **held,
        "to": "D",
        "class": "business",
        "seats": [{"coach": "01", "seat": "01A", "passenger": 0}],
    }
    assert await availability(api, rid, "A", "B") == {"business": 0, "second": 4}

    # business is now full: changing bob there fails and leaves his booking as it was
    r = await book(api, rid, token("bob"), booking_body("B", "C", "second", people("b")))
    assert r.status_code == 201, r.text
    bobs = r.json()
    bob = {"Authorization": token("bob")}
    r = await api.post(
        f"/v1/bookings/{bobs['booking_id']}/change",
        json={"from": "B", "to": "C", "class": "business"},
        headers=bob,
    )
    assert_problem(r, 409, "sold-out")
    assert (await api.get(f"/v1/bookings/{bobs['booking_id']}", headers=bob)).json() == bobs
    assert await availability(api, rid, "B", "C") == {"business": 0, "second": 3}

    for body, type_ in [
        ({"from": "A", "to": "Z", "class": "second"}, "unknown-station"),
        ({"from": "C", "to": "B", "class": "second"}, "bad-trip"),
        ({"from": "A", "to": "B", "class": "first"}, "unknown-class"),
        ({"from": "A", "to": "B", "class": "second", "seats": []}, "validation"),
        ({"from": "A", "to": "B"}, "validation"),
    ]:
        assert_problem(await api.post(path, json=body, headers=alice), 422, type_)
    assert (await api.get(f"/v1/bookings/{held['booking_id']}", headers=alice)).json() == changed


async def test_admins_list_every_booking_with_user_and_passengers(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    made = {}
    for user, ids in [("alice", ("a1", "a2")), ("bob", ("b1",))]:
        r = await book(api, rid, token(user), booking_body("A", "C", "second", people(*ids)))
        assert r.status_code == 201, r.text
        made[r.json()["booking_id"]] = (user, r.json(), people(*ids))

    listed = await admin_list(api, rid, admin)
    assert len(listed) == 2
    for item in listed:
        user, reply, passengers = made[item["booking_id"]]
        assert item == {**reply, "user": user, "passengers": passengers}

    path = f"/v1/routes/{rid}/bookings"
    assert_problem(await api.get(path, headers={"Authorization": token("alice")}), 403, "forbidden")
    assert_problem(await api.get(path), 401, "unauthorized")
    r = await api.get("/v1/routes/NOPE3-20261201/bookings", headers={"Authorization": admin})
    assert_problem(r, 404, "not-found")


async def test_a_retry_through_another_front_end_gets_the_first_answer(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    # two front ends over one Ray and Redis, as behind a load balancer
    one, two = await app_factory(), await app_factory()
    coaches = [coach("01", "second", 1, "A")]
    rid = await create_route(
        one, token("ops", True), route_body(train_of(route_id_factory), coaches=coaches)
    )
    body = booking_body("A", "D", "second", people("last-seat"))
    first = await book(one, rid, token("alice"), body, key="retry-me")
    assert first.status_code == 201, first.text
    # the client timed out and retries; the balancer sends it to the other front end,
    # whose snapshot (fresh from any read) already shows the seat gone
    assert await availability(two, rid, "A", "B") == {"second": 0}
    again = await book(two, rid, token("alice"), body, key="retry-me")
    assert (again.status_code, again.content) == (first.status_code, first.content)

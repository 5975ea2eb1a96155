"""The console's JSON: the seat map of a trip, picked seats, and the operator's reads."""

from __future__ import annotations

import asyncio

import httpx
from support.http import (
    DATE,
    Ids,
    Tokens,
    assert_problem,
    book,
    booking_body,
    create_route,
    people,
    route_body,
    train_of,
)


async def _seats(api: httpx.AsyncClient, route_id: str, from_: str, to: str) -> dict[str, object]:
    r = await api.get(f"/v1/routes/{route_id}/seats", params={"from": from_, "to": to})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _taken(body: dict[str, object]) -> set[str]:
    coaches = body["coaches"]
    assert isinstance(coaches, list)
    return {f"{c['number']}-{s}" for c in coaches for s in c["taken"]}


async def test_a_picked_seat_is_booked_and_taken_only_on_its_segments(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    assert _taken(await _seats(api, rid, "A", "D")) == set()
    pick = [{"coach": "02", "seat": "02B"}]
    r = await book(api, rid, alice, booking_body("A", "B", "second", people("p1"), seats=pick))
    assert r.status_code == 201, r.text
    assert r.json()["seats"][0]["seat"] == "02B"
    # this front end reads its own write at once; the seat is free after B
    assert _taken(await _seats(api, rid, "A", "C")) == {"02-02B"}
    after_b = await _seats(api, rid, "B", "D")
    assert _taken(after_b) == set()
    assert after_b["free"] == {"business": 2, "second": 4}
    again = await book(api, rid, token("bob"), booking_body("A", "C", "second", people("p2"),
                                                            seats=pick))  # fmt: skip
    assert assert_problem(again, 409, "seat-taken")["detail"].startswith("Seat 02-02B")


async def test_picked_seats_must_exist_match_the_class_and_the_party(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    cases = [
        [{"coach": "09", "seat": "01A"}],
        [{"coach": "01", "seat": "01A"}],  # business, booked as second
        [{"coach": "02", "seat": "01A"}, {"coach": "02", "seat": "01B"}],  # two for one
    ]
    for pick in cases:
        r = await book(api, rid, alice, booking_body("A", "B", "second", people("p1"), seats=pick))
        assert_problem(r, 422, "validation")
    twice = [{"coach": "02", "seat": "01A"}] * 2
    r = await book(api, rid, alice, booking_body("A", "B", "second", people("p1", "p2"),
                                                 seats=twice))  # fmt: skip
    assert_problem(r, 422, "validation")


async def test_seat_reads_refuse_bad_trips_with_a_sentence(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rid = await create_route(api, token("ops", admin=True), route_body(train_of(route_id_factory)))
    bad = [{"from": "A"}, {"from": "C", "to": "A"}, {"from": "A", "to": "Z"},
           {"from": "A", "to": "B", "x": "1"}]  # fmt: skip
    for params in bad:
        assert_problem(await api.get(f"/v1/routes/{rid}/seats", params=params), 422)
    assert_problem(await api.get("/v1/routes/NOPE1-20261201/seats?from=A&to=B"), 404, "not-found")


async def test_many_viewers_share_one_seat_read(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    from actors.plane import protocol
    from server.dispatch.gateway import Gateway

    rid = await create_route(api, token("ops", admin=True), route_body(train_of(route_id_factory)))
    reads = 0
    original = Gateway.read

    async def counting(self: Gateway, ch: object, op: int) -> bytes:
        nonlocal reads
        reads += op == protocol.OP_SEATS
        return await original(self, ch, op)  # type: ignore[arg-type]

    Gateway.read = counting  # type: ignore[method-assign]
    try:
        got = await asyncio.gather(*(_seats(api, rid, "A", "D") for _ in range(50)))
    finally:
        Gateway.read = original  # type: ignore[method-assign]
    assert reads == 1
    assert all(g == got[0] for g in got)


async def test_operator_reads_need_an_admin_and_show_the_sale(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    r = await book(api, rid, alice, booking_body("A", "D", "second", people("p1")))
    assert r.status_code == 201, r.text
    for path in ("/v1/admin/routes?date=" + DATE, "/v1/admin/sales", "/v1/admin/actors",
                 "/v1/admin/frontend"):  # fmt: skip
        assert_problem(await api.get(path), 401, "unauthorized")
        assert_problem(await api.get(path, headers={"Authorization": alice}), 403, "forbidden")
    routes = await api.get("/v1/admin/routes", params={"date": DATE},
                           headers={"Authorization": admin})  # fmt: skip
    assert routes.status_code == 200, routes.text
    mine = next(x for x in routes.json()["routes"] if x["route_id"] == rid)
    assert mine == {"route_id": rid, "train": rid.split("-")[0], "seats": 6, "free": 5,
                    "active": True, "sold": 0, "held": 1, "waitlisted": 0}  # fmt: skip
    actors = (await api.get("/v1/admin/actors", headers={"Authorization": admin})).json()
    entry = next(a for a in actors["actors"] if a["route_id"] == rid)
    assert entry["pid"] > 0 and entry["node"] and entry["state"] == "active"
    assert entry["events_applied"] >= 1
    await asyncio.sleep(1.2)  # at least one whole second sampled
    sales = (await api.get("/v1/admin/sales?seconds=60", headers={"Authorization": admin})).json()
    assert sum(p["bookings"] for p in sales["points"]) >= 1
    front = (await api.get("/v1/admin/frontend", headers={"Authorization": admin})).json()
    assert front["batches"] >= 1 and front["queue_depth"] == 0
    bad = await api.get("/v1/admin/routes?date=2026-13-01", headers={"Authorization": admin})
    assert_problem(bad, 422, "validation")
    assert_problem(await api.get("/v1/admin/sales?seconds=0", headers={"Authorization": admin}),
                   422, "validation")  # fmt: skip

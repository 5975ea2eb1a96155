"""GET /v1/sales and a sale's figures for the console: who joined, how many were admitted
and how fast, how many seats are left; all answered from the front end's memory."""

from __future__ import annotations

import httpx
from support.http import (
    STATIONS,
    Ids,
    Tokens,
    assert_problem,
    booking_body,
    create_route,
    people,
    route_body,
    train_of,
)
from support.sales import create_sale, get_sale, until

#: the seats of support.http.route_body's train (2 business, 4 second)
SEATS = 6


async def _listed(api: httpx.AsyncClient, auth: str, query: str = "") -> list[str]:
    r = await api.get(f"/v1/sales{query}", headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    return [s["sale_id"] for s in r.json()["sales"]]


async def test_sales_are_listed_latest_opening_first_and_by_route(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    first = await create_route(api, admin, route_body(train_of(route_id_factory)))
    second = await create_route(api, admin, route_body(train_of(route_id_factory)))
    early = (await create_sale(api, admin, [first], opens_in=60))["sale_id"]
    late = (await create_sale(api, admin, [second], opens_in=120))["sale_id"]
    listed = await _listed(api, alice)  # any signed-in user; other tests' sales too
    assert listed.index(late) < listed.index(early)
    assert await _listed(api, alice, f"?route={first}") == [early]
    assert await _listed(api, alice, "?route=NOSALE1-20261201") == []
    assert_problem(await api.get("/v1/sales"), 401, "unauthorized")
    bad = await api.get("/v1/sales?route=not-a-route", headers={"Authorization": alice})
    assert "G101-20261201" in assert_problem(bad, 422, "validation")["detail"]
    assert_problem(await api.get("/v1/sales?date=2026-12-01", headers={"Authorization": alice}),
                   422, "validation")  # fmt: skip


async def test_a_sale_counts_who_joined_before_its_opening_and_its_seats_left(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", admin=True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await create_sale(api, admin, [rid], opens_in=60))["sale_id"]
    for user in ("u1", "u2"):
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": token(user)})
        assert r.json()["state"] == "not-open", r.text

    async def counted() -> dict[str, object] | None:
        sale = await get_sale(api, sid, admin)
        return sale if sale["joined"] == 2 else None

    sale = await until("both joiners counted", counted)
    # no place is given before the opening, so nobody is queued or admitted yet
    assert (sale["queued"], sale["admitted"], sale["admit_rate"]) == (0, 0, 0.0)
    assert sale["seats_left"] == SEATS
    r = await api.get(f"/v1/sales?route={rid}", headers={"Authorization": admin})
    [listed] = r.json()["sales"]
    assert listed["joined"] == 2 and listed["seats_left"] == SEATS


async def test_admissions_are_measured_and_a_booking_lowers_the_seats_left(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await create_sale(api, admin, [rid], opens_in=0))["sale_id"]
    for auth in (alice, token("bob"), token("carol")):
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": auth})
        assert r.status_code == 200, r.text

    async def admitting() -> dict[str, object] | None:
        sale = await get_sale(api, sid, admin)
        return sale if sale["admitted"] == 3 and sale["admit_rate"] > 0 else None

    sale = await until("three admitted, at a measured rate", admitting)
    assert sale["seats_left"] == SEATS and sale["state"] == "open"
    polled = await api.get(f"/v1/sales/{sid}/queue", headers={"Authorization": alice})
    headers = {"Authorization": alice, "Admission": polled.json()["admission"],
               "Idempotency-Key": "listing-1"}  # fmt: skip
    trip = booking_body(STATIONS[0], STATIONS[-1], "second", people("p1"))
    r = await api.post(f"/v1/routes/{rid}/bookings", json=trip, headers=headers)
    assert r.status_code == 201, r.text

    async def one_fewer() -> bool:
        return (await get_sale(api, sid, admin))["seats_left"] == SEATS - 1

    await until("the seat booked counted off", one_fewer)
    r = await api.patch(f"/v1/sales/{sid}", json={"state": "closed"},
                        headers={"Authorization": admin})  # fmt: skip
    closed = r.json()
    assert (closed["state"], closed["admit_rate"], closed["admitted"]) == ("closed", 0.0, 3)

"""What a poll of a sale's queue advises: an estimate from the opening on for a sale
with a fixed rate, and no 429 for a caller who waited as advised when the advice grew."""

from __future__ import annotations

import asyncio

import httpx
from support.http import Ids, Tokens, assert_problem, create_route, route_body, train_of
from support.sales import create_sale, get_sale, until


async def test_a_fixed_rate_sale_gives_an_estimate_from_its_opening_on(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", admin=True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    # open at once, one admission every 4 s: nothing is admitted (measured) for a while
    sid = (await create_sale(api, admin, [rid], opens_in=0, rate=0.25))["sale_id"]
    answers = []
    for user in ("f1", "f2", "f3"):
        r = await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": token(user)})
        answers.append(r.json())
    last = answers[-1]
    assert last["state"] == "waiting" and last["place"] == 3, last
    # three places at 4 s each, minus the carry the rate may have built up already
    assert last["eta_seconds"] is not None and 4 <= last["eta_seconds"] <= 12, last
    assert last["poll_after_seconds"] <= 3, last


async def test_a_caller_who_polls_as_advised_is_answered_when_the_advice_grows(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), {"Authorization": token("alice")}
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await create_sale(api, admin, [rid], opens_in=1.0))["sale_id"]
    await api.post(f"/v1/sales/{sid}/queue", headers=alice)
    first = (await api.get(f"/v1/sales/{sid}/queue", headers=alice)).json()
    assert first["state"] == "not-open" and first["poll_after_seconds"] == 1, first

    async def admitted() -> bool:
        return (await get_sale(api, sid, admin))["admitted"] == 1

    await until("alice admitted", admitted)
    await asyncio.sleep(first["poll_after_seconds"])
    # admitted: advised to come back in 30 s, but judged by the 1 s she was told before
    r = await api.get(f"/v1/sales/{sid}/queue", headers=alice)
    assert r.status_code == 200 and r.json()["state"] == "admitted", r.text
    advised = r.json()["poll_after_seconds"]
    assert advised > 2 * first["poll_after_seconds"]
    too_soon = await api.get(f"/v1/sales/{sid}/queue", headers=alice)
    assert_problem(too_soon, 429, "polling-too-fast")
    assert int(too_soon.headers["Retry-After"]) >= advised - 2


async def test_the_estimate_right_after_the_opening_is_not_diluted_by_the_time_before_it(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", admin=True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await create_sale(api, admin, [rid], opens_in=3.0, rate=None))["sale_id"]
    crowd = [token(f"c{n}") for n in range(120)]
    for auth in crowd:
        await api.post(f"/v1/sales/{sid}/queue", headers={"Authorization": auth})

    async def moved_twice() -> bool:  # automatic: the first move admits a seats' worth
        sale = await get_sale(api, sid, admin)
        return bool(sale["state"] == "open" and sale["admitted"] > 0 and sale["admit_rate"] > 0)

    await until("the frontier moved after the opening", moved_twice)
    sale = await get_sale(api, sid, admin)
    # the rate is measured over the time since the opening, not the 10 s window before it
    # (when it was 0): it is at least what was admitted over the seconds since
    assert sale["admit_rate"] >= sale["admitted"] / 3, sale

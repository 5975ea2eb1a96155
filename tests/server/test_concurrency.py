"""Many requests at once: no overselling, one booking per idempotency key, fast 503s."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import httpx
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
    expected_free,
    occupied,
    people,
    route_body,
    train_of,
)


async def test_200_buyers_for_50_seats_get_exactly_50_bookings(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    route = route_body(
        train_of(route_id_factory),
        stations=["A", "B", "C"],
        coaches=[coach("05", "second", 10, "ABCDF")],
    )
    rid = await create_route(api, admin, route)
    answers = await asyncio.gather(
        *(
            book(api, rid, token(f"buyer{n}"), booking_body("A", "C", "second", people(f"p{n}")))
            for n in range(200)
        )
    )
    statuses = Counter(r.status_code for r in answers)
    assert statuses == {201: 50, 409: 150}, statuses
    for r in answers:
        if r.status_code == 409:
            assert_problem(r, 409, "sold-out")

    listed = await admin_list(api, rid, admin)
    assert sorted(b["booking_id"] for b in listed) == sorted(
        r.json()["booking_id"] for r in answers if r.status_code == 201
    )
    taken = occupied(listed, route["stations"])
    assert len(taken) == len(set(taken)) == 100  # 50 seats x 2 segments, none twice
    buyer = {r.json()["booking_id"]: n for n, r in enumerate(answers) if r.status_code == 201}
    for b in listed:
        n = buyer[b["booking_id"]]
        assert (b["user"], b["passengers"]) == (f"buyer{n}", people(f"p{n}"))
    assert await availability(api, rid, "A", "B") == {"second": 0}


async def test_concurrent_mixed_trips_never_share_a_seat_segment(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    stations = ["A", "B", "C", "D", "E"]
    route = route_body(
        train_of(route_id_factory), stations=stations, coaches=[coach("01", "second", 3, "ABCD")]
    )
    rid = await create_route(api, admin, route)
    rng = random.Random(7)
    requests = []
    for n in range(150):
        i = rng.randrange(4)
        j = rng.randrange(i + 1, 5)
        group = people(*(f"m{n}-{k}" for k in range(rng.choice((1, 1, 2)))))
        requests.append(booking_body(stations[i], stations[j], "second", group))
    answers = await asyncio.gather(
        *(book(api, rid, token(f"mixed{n}"), body) for n, body in enumerate(requests))
    )
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) <= {201, 409} and statuses[201] >= 6, statuses

    listed = await admin_list(api, rid, admin)
    assert len(listed) == statuses[201]
    taken = occupied(listed, stations)
    assert len(taken) == len(set(taken))
    for i, frm in enumerate(stations):
        for to in stations[i + 1 :]:
            assert await availability(api, rid, frm, to) == expected_free(route, listed, frm, to)
    # nothing was cancelled, so free seats only shrank: a refused request must still not fit
    for body, r in zip(requests, answers, strict=True):
        if r.status_code == 409:
            free = await availability(api, rid, body["from"], body["to"])
            assert free["second"] < len(body["passengers"]), (body, free)


async def test_a_request_sent_several_times_at_once_books_once(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    alice = token("alice")
    for copies, key in [(2, "twice"), (10, "ten-times")]:
        body = booking_body("A", "B", "second", people(key))
        answers = await asyncio.gather(
            *(book(api, rid, alice, body, key=key) for _ in range(copies))
        )
        assert answers[0].status_code == 201, answers[0].text
        assert {(r.status_code, r.content) for r in answers} == {(201, answers[0].content)}
    listed = await admin_list(api, rid, admin)
    assert sorted(b["passengers"][0]["id"] for b in listed) == ["ten-times", "twice"]


async def test_an_overloaded_route_answers_503_at_once_and_loses_nothing(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    api = await app_factory(max_queue=5)
    admin = token("ops", True)
    coaches = [coach(f"{n:02d}", "second", 20, "ABCDF") for n in range(1, 5)]
    route = route_body(train_of(route_id_factory), coaches=coaches)  # 400 seats: none sell out
    rid = await create_route(api, admin, route)

    async def timed(n: int) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        r = await book(
            api, rid, token(f"rush{n}"), booking_body("A", "D", "second", people(f"r{n}"))
        )
        return r, time.perf_counter() - started

    # all 300 arrive while the first call is in flight (it starts the route's actor): that
    # call and the 5 queued behind it go through, the rest must be turned away
    results = await asyncio.gather(*(timed(n) for n in range(300)))
    statuses = Counter(r.status_code for r, _ in results)
    assert set(statuses) == {201, 503}, statuses
    assert statuses[201] >= 1 and statuses[503] >= 200, statuses
    refused = [seconds for r, seconds in results if r.status_code == 503]
    served = [seconds for r, seconds in results if r.status_code == 201]
    for r, _ in results:
        if r.status_code == 503:
            assert_problem(r, 503, "overloaded")
            assert r.headers["retry-after"] == "1"
    # refusals never waited for the actor
    assert max(refused) < min(served), (max(refused), min(served))

    listed = await admin_list(api, rid, admin)
    assert sorted(b["booking_id"] for b in listed) == sorted(
        r.json()["booking_id"] for r, _ in results if r.status_code == 201
    )
    # once the rush is over the route serves again
    r = await book(api, rid, token("late"), booking_body("A", "D", "second", people("late")))
    assert r.status_code == 201, r.text

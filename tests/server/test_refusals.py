"""Cached "sold out" answers: what a refusal from a front end's snapshot guarantees, and
what it costs Redis (server/dispatch/refusals.py, keys.idem_marker)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import httpx
import pytest
import redis.asyncio
import structlog.testing
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

from actors.storage import keys
from actors.storage.read_side import CachedMarks
from server.dispatch.refusals import RefusalMarks


class CountingMarks(CachedMarks):
    """The real marks, counting the script calls that reach Redis."""

    calls = 0

    async def first(self, marks: Sequence[tuple[str, str, str]]) -> list[bool]:
        self.calls += 1
        return await super().first(marks)


@pytest.mark.parametrize("lean", [True, False], ids=["lean-connection", "redis-py"])
async def test_the_refusals_of_one_loop_turn_cost_one_redis_write(
    redis_client: redis.asyncio.Redis, redis_url: str, lean: bool
) -> None:
    # the lean connection for redis:// and unix:// URLs, redis-py's pipeline for TLS
    marks = CountingMarks(redis_client, redis_url if lean else None)
    refusals = RefusalMarks(marks)
    try:
        wanted = [("R1-20261201", f"u{n}", f"k{n}") for n in range(50)]
        wanted += [("R2-20261201", f"u{n}", f"k{n}") for n in range(30)]
        first = await asyncio.gather(*(refusals.first(*w) for w in wanted))
        assert first == [True] * 80 and marks.calls == 1
        marker = keys.idem_marker("R1-20261201", "u7", "k7")
        assert (await redis_client.get(marker) or b"").startswith(b"c")
        assert 0 < await redis_client.ttl(marker) <= keys.CACHED_MARKER_TTL
        # each key is marked once: the second answer for it must come from an actor
        again = await asyncio.gather(*(refusals.first(*w) for w in wanted[:10]))
        assert again == [False] * 10 and marks.calls == 2
    finally:
        refusals.close()


async def test_a_refusal_fails_with_redis_and_is_never_answered_unmarked(
    redis_url: str,
) -> None:
    # a Redis that does not answer: the refusal must not be given without its mark
    dead = redis.asyncio.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    refusals = RefusalMarks(CachedMarks(dead, "redis://127.0.0.1:1"))
    try:
        outcome = await asyncio.gather(
            refusals.first("R1-20261201", "u", "k"), return_exceptions=True
        )
        assert isinstance(outcome[0], redis.RedisError | OSError), outcome
    finally:
        refusals.close()
        await dead.aclose()


async def test_a_key_refused_from_a_cache_is_not_booked_by_an_attempt_still_on_its_way(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    # two front ends over one Ray and Redis, as two workers of a node or two nodes
    one, two = await app_factory(), await app_factory()
    admin = token("ops", True)
    coaches = [coach("01", "second", 1, "A")]  # one seat
    rid = await create_route(one, admin, route_body(train_of(route_id_factory), coaches=coaches))
    body = booking_body("A", "D", "second", people("someone"))
    taken = await book(one, rid, token("u0"), body)
    assert taken.status_code == 201, taken.text
    assert await availability(two, rid, "A", "D") == {"second": 0}

    # alice's first attempt is slow to arrive; her retry reaches the other front end, whose
    # fresh snapshot says sold out: answered at once, from memory
    mine = booking_body("A", "D", "second", people("alice-pax"))
    refused = await book(two, rid, token("alice"), mine, key="alice-1")
    assert_problem(refused, 409, "sold-out")

    # meanwhile the seat came free, and the first attempt finally reaches an actor: it must
    # not book, or the client would hold a booking it was told does not exist
    r = await one.delete(
        f"/v1/bookings/{taken.json()['booking_id']}", headers={"Authorization": token("u0")}
    )
    assert r.status_code == 200, r.text
    late = await book(one, rid, token("alice"), mine, key="alice-1")
    assert_problem(late, 503, "unavailable")
    assert [b for b in await admin_list(one, rid, admin) if b["user"] == "alice"] == []

    # both answers said "not booked"; the next retry of the key is decided afresh
    again = await book(one, rid, token("alice"), mine, key="alice-1")
    assert again.status_code == 201, again.text
    mine_now = [b for b in await admin_list(one, rid, admin) if b["user"] == "alice"]
    assert [b["booking_id"] for b in mine_now] == [again.json()["booking_id"]]
    # and a retry of it, at either front end, gets that first answer
    for api in (one, two):
        repeat = await book(api, rid, token("alice"), mine, key="alice-1")
        assert (repeat.status_code, repeat.content) == (201, again.content)


async def test_many_refusals_at_once_are_all_409_and_book_nothing(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    coaches = [coach("01", "second", 1, "A")]
    rid = await create_route(api, admin, route_body(train_of(route_id_factory), coaches=coaches))
    first = await book(api, rid, token("u0"), booking_body("A", "D", "second", people("p0")))
    assert first.status_code == 201, first.text
    assert await availability(api, rid, "A", "D") == {"second": 0}
    answers = await asyncio.gather(
        *(
            book(api, rid, token(f"u{n}"), booking_body("A", "B", "second", people(f"p{n}")))
            for n in range(1, 41)
        )
    )
    for r in answers:
        assert_problem(r, 409, "sold-out")
    assert len(await admin_list(api, rid, admin)) == 1


async def test_a_trip_refused_from_memory_says_so_in_the_log_once(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    # 409s answered from a snapshot touch no actor and no storage: without this line a
    # sold-out rush is silent in the log (a test whose load sold its trips out once read
    # 30 s of it as a server gone silent after a Redis restart)
    api = await app_factory()
    coaches = [coach("01", "second", 1, "A")]
    rid = await create_route(
        api, token("ops", True), route_body(train_of(route_id_factory), coaches=coaches)
    )
    taken = await book(api, rid, token("u0"), booking_body("A", "D", "second", people("p0")))
    assert taken.status_code == 201, taken.text
    assert await availability(api, rid, "A", "D") == {"second": 0}
    with structlog.testing.capture_logs() as logs:
        for n in range(1, 6):
            body = booking_body("A", "D", "second", people(f"p{n}"))
            assert_problem(await book(api, rid, token(f"u{n}"), body), 409, "sold-out")
    said = [e for e in logs if e["event"] == "trip sold out, refusing from memory"]
    assert len(said) == 1, logs
    assert said[0] | {"route_id": rid, "from_station": "A", "to_station": "D"} == said[0]

"""A sale's queue in the real Redis: one place per user, the pre-queue drawn once at the
opening, the frontier moved once however many front ends move it, nothing lost when a
front end's store is made anew (a restart)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest
import redis.asyncio

from actors.storage import keys
from server.waiting import policy
from server.waiting.store import Joins, NoSuchSale, QueueStore

Sale = Callable[[], str]


@pytest.fixture
def sale_id() -> Sale:
    counter = iter(range(10**6))
    return lambda: f"s{time.time_ns()}-{next(counter)}"


async def test_the_pre_queue_is_drawn_at_the_opening_and_later_joiners_follow(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    early = [f"e{n}" for n in range(50)]
    assert await store.join(sid, early) == [0] * 50
    assert await store.join(sid, ["e3", "e3"]) == [0, 0]  # again: still in the pre-queue
    assert await store.open(sid, random.Random(5)) == 50
    places = await store.join(sid, early)
    assert sorted(places) == list(range(1, 51)) and places != list(range(1, 51))
    assert await store.join(sid, ["late1", "late2", "late1"]) == [51, 52, 51]
    figures = await store.figures(sid)
    assert (figures.opened, figures.queued, figures.joins) == (True, 52, 52)


async def test_a_second_opening_changes_nothing(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    users = [f"u{n}" for n in range(20)]
    await store.join(sid, users)
    await store.open(sid)
    before = await store.join(sid, users)
    assert await QueueStore(redis_client).open(sid) == -1  # another front end, later
    assert await store.join(sid, users) == before


async def test_joins_during_the_draw_are_drawn_too_never_left_without_a_place(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    await store.join(sid, [f"u{n}" for n in range(200)])
    # joins racing the opening from other front ends: each is in the pre-queue (drawn)
    # or after it, and every user ends with exactly one place
    racers = [asyncio.create_task(QueueStore(redis_client).join(sid, [f"r{n}"]))
              for n in range(20)]  # fmt: skip
    assert await store.open(sid) >= 200
    await asyncio.gather(*racers)
    everyone = [f"u{n}" for n in range(200)] + [f"r{n}" for n in range(20)]
    places = await store.join(sid, everyone)
    assert sorted(places) == list(range(1, 221))


async def test_many_front_ends_move_one_frontier_at_the_sale_s_rate(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    sid = sale_id()
    stores = [QueueStore(redis_client) for _ in range(4)]
    await stores[0].create(sid, policy.OPEN)
    await stores[0].join(sid, [f"u{n}" for n in range(1000)])
    await stores[0].open(sid)
    started = time.monotonic()
    rule = policy.FixedRate(100.0)
    while time.monotonic() - started < 1.0:
        await asyncio.gather(*(s.advance(sid, rule, seats_left=10) for s in stores))
        await asyncio.sleep(0.01)
    frontier = (await stores[0].figures(sid)).frontier
    elapsed = time.monotonic() - started
    # four movers, one frontier: about 100 a second, not 400
    assert 100 * (elapsed - 0.2) <= frontier <= 100 * (elapsed + 0.2), (frontier, elapsed)


async def test_a_paused_sale_admits_nobody_and_resumes_where_it_stopped(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid, policy.PAUSED)
    await store.join(sid, [f"u{n}" for n in range(100)])
    await store.open(sid)
    await asyncio.sleep(0.3)
    assert await store.advance(sid, policy.FixedRate(100), seats_left=10) == 0
    await store.set_state(sid, policy.OPEN)
    await asyncio.sleep(0.2)
    # only the time since the resume counts: ~20, never the ~50 of the whole wait
    assert 10 <= await store.advance(sid, policy.FixedRate(100), seats_left=10) <= 35


async def test_joins_of_one_loop_turn_go_in_one_call(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    await store.open(sid)
    calls = 0
    original = store.join

    async def counting(sale: str, users: list[str]) -> list[int]:
        nonlocal calls
        calls += 1
        return await original(sale, users)

    store.join = counting  # type: ignore[method-assign]
    joins = Joins(store)
    places = await asyncio.gather(*(joins.join(sid, f"u{n}") for n in range(50)))
    assert sorted(places) == list(range(1, 51)) and calls == 1


async def test_a_queue_that_does_not_exist_says_so(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    with pytest.raises(NoSuchSale):
        await store.join(sid, ["u"])
    with pytest.raises(NoSuchSale):
        await store.figures(sid)
    assert not await redis_client.exists(keys.sale_joined(sid))


async def test_a_draw_of_a_pre_queue_that_grew_meanwhile_is_refused(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    await store.join(sid, ["a", "b"])
    ks = [keys.sale(sid), keys.sale_places(sid), keys.sale_prequeue(sid)]
    # drawn from two users, while a third joined: written, c would have no place
    await store.join(sid, ["c"])
    assert await store._open(keys=ks, args=[2, "b", "a"]) == -2
    assert await store.open(sid) == 3  # drawn again, with c
    assert sorted(await store.join(sid, ["a", "b", "c"])) == [1, 2, 3]


async def test_a_move_computed_before_another_front_end_s_is_dropped_not_written_back(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    sid, rule = sale_id(), policy.FixedRate(100.0)
    slow, fast = QueueStore(redis_client), QueueStore(redis_client)
    await slow.create(sid, policy.OPEN)
    await slow.join(sid, [f"u{n}" for n in range(1000)])
    await slow.open(sid)
    await asyncio.sleep(0.3)
    moved_by_fast: list[int] = []
    write = slow._advance

    async def late(**kwargs: object) -> object:
        # the slow front end computed its move (~30), then stalled while the fast one moved
        # the frontier further (~50): writing now would take the line back
        await asyncio.sleep(0.2)
        moved_by_fast.append(await fast.advance(sid, rule, seats_left=10))
        return await write(**kwargs)  # type: ignore[arg-type]

    slow._advance = late  # type: ignore[assignment]
    answered = await slow.advance(sid, rule, seats_left=10)
    stored = (await slow.figures(sid)).frontier
    assert answered == stored == moved_by_fast[0] >= 40


async def test_front_ends_admitting_automatically_never_pass_seats_left_times_the_factor(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    # each front end's pass moves the frontier in turn, nobody books meanwhile: the
    # unbooked are counted from the frontier each move reads, so the second front end
    # (whose pass began before the first one's move) adds nobody
    sid = sale_id()
    stores = [QueueStore(redis_client) for _ in range(3)]
    await stores[0].create(sid, policy.OPEN)
    await stores[0].join(sid, [f"u{n}" for n in range(1000)])
    await stores[0].open(sid)
    rule = policy.Automatic(1.5)
    for _ in range(3):
        for store in stores:
            await store.advance(sid, rule, seats_left=100, settled=0)
    assert (await stores[0].figures(sid)).frontier == 150
    # 40 booked and 40 let their admission lapse: 70 admitted may still book, and room
    # for 60 x 1.5 = 90 of them admits 20 more, once
    assert await stores[1].advance(sid, rule, seats_left=60, settled=80) == 170
    assert await stores[2].advance(sid, rule, seats_left=60, settled=80) == 170


async def test_joins_after_the_opening_time_but_before_the_draw_follow_the_pre_queue(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    sid = sale_id()
    store = QueueStore(redis_client)
    await store.create(sid, opens_at=time.time() + 0.3)
    early = [f"e{n}" for n in range(20)]
    assert await store.join(sid, early) == [0] * 20
    await asyncio.sleep(0.4)  # the opening time passed; no keeper has drawn yet
    late = [f"l{n}" for n in range(5)]
    assert await store.join(sid, late) == [0] * 5
    assert await store.open(sid, random.Random(7)) == 20
    places = await redis_client.hgetall(keys.sale_places(sid))
    got = {k.decode(): int(v) for k, v in places.items()}
    assert sorted(got[u] for u in early) == list(range(1, 21))
    assert [got[u] for u in late] == list(range(21, 26))
    assert await store.join(sid, ["after"]) == [26]


async def test_joins_arriving_while_a_write_is_in_flight_go_together_in_the_next(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    await store.open(sid)
    batches: list[int] = []
    release = asyncio.Event()
    original = store.join

    async def slow(sale: str, users: list[str]) -> list[int]:
        batches.append(len(users))
        if len(batches) == 1:
            await release.wait()  # the first write is slow to land
        return await original(sale, users)

    store.join = slow  # type: ignore[method-assign]
    joins = Joins(store)
    first = asyncio.ensure_future(joins.join(sid, "a"))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(joins.join(sid, f"b{n}")) for n in range(10)]
    for _ in range(5):  # several loop turns: none starts a second write meanwhile
        await asyncio.sleep(0)
    assert batches == [1]
    release.set()
    assert await first == 1
    assert sorted(await asyncio.gather(*later)) == list(range(2, 12))
    assert batches == [1, 10]


async def test_a_failed_write_fails_its_joins_and_the_next_ones_still_go(
    redis_client: redis.asyncio.Redis, sale_id: Sale
) -> None:
    store, sid = QueueStore(redis_client), sale_id()
    await store.create(sid)
    await store.open(sid)
    original, calls = store.join, 0

    async def flaky(sale: str, users: list[str]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.01)
            raise redis.exceptions.ConnectionError("Redis went away")
        return await original(sale, users)

    store.join = flaky  # type: ignore[method-assign]
    joins = Joins(store)
    first = asyncio.ensure_future(joins.join(sid, "a"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(joins.join(sid, "b"))
    with pytest.raises(redis.exceptions.ConnectionError):
        await first
    assert await second == 1


async def test_joins_over_the_lean_connection_answer_as_over_redis_py(
    redis_client: redis.asyncio.Redis, redis_url: str, sale_id: Sale
) -> None:
    sid = sale_id()
    lean = QueueStore(redis_client, lean_url=redis_url)
    assert lean._lean is not None  # the way under test
    await lean.create(sid)
    await lean.open(sid)
    assert await lean.join(sid, ["a", "b"]) == [1, 2]
    await redis_client.script_flush()  # a restarted Redis forgets its scripts
    assert await lean.join(sid, ["b", "c"]) == [2, 3]
    assert await QueueStore(redis_client).join(sid, ["c", "d"]) == [3, 4]
    with pytest.raises(NoSuchSale):
        await lean.join("never-made", ["a"])
    lean.close()

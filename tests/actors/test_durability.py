"""A route actor never loses what it acknowledged and never applies anything twice.

Real local Ray and real Redis throughout: actor processes are SIGKILLed, Redis is
killed and stopped, journal entries are corrupted, and every check reads back what
recovery rebuilds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import ray
import redis
import redis.asyncio
from ray.exceptions import RayActorError
from support.actors import (
    FlakyProxy,
    actor_config,
    actor_pid,
    assert_bits_match_bookings,
    assert_no_double_sale,
    book,
    bookings,
    close_plane_clients,
    create_route,
    is_unavailable,
    results,
    route_actor,
    route_def,
    sigkill,
    stored_state,
    submit,
    trips,
    wait_dead,
    wait_for_new_process,
)
from support.domain import assert_same_state

from actors import directory
from actors.actor import Reply
from actors.domain.decide import Policy, run_batch
from actors.domain.messages import (
    Cancel,
    Change,
    Command,
    Confirm,
    Event,
    Held,
    ListBookings,
    Sweep,
    encode,
)
from actors.domain.route import pair_index, trip_mask
from actors.domain.state import RouteState, apply, to_snapshot
from actors.domain.views import Record, record
from actors.plane import protocol
from actors.storage import journal, keys
from actors.storage.journal import JournalCorrupt
from actors.storage.recovery import recover
from actors.storage.redis_server import EmbeddedRedis

pytestmark = pytest.mark.usefixtures("ray_local")

RouteIds = Callable[[], str]


def _pair(index: int, stations: int) -> tuple[int, int]:
    """The station pair (i, j) at a flattened availability-matrix index."""
    pairs = [(i, j) for i in range(stations) for j in range(i + 1, stations)]
    (pair,) = [p for p in pairs if pair_index(*p, stations) == index]
    return pair


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@contextlib.asynccontextmanager
async def proxied_actor(
    redis_url: str, route_id: str, **overrides: Any
) -> AsyncIterator[tuple[FlakyProxy, Any]]:
    """A route actor whose Redis connection goes through a FlakyProxy (closed after)."""
    proxy = FlakyProxy(_port(redis_url))
    try:
        config = actor_config(await proxy.start(), **overrides)
        async with route_actor(route_id, config) as handle:
            yield proxy, handle
    finally:
        await proxy.close()


def held_counts(url: str, route_id: str) -> Counter[str]:
    """How many Held events each booking id has in the (untrimmed) journal."""
    client = redis.Redis.from_url(url)
    try:
        stored = journal.load(client, route_id)
    finally:
        client.close()
    assert stored.snapshot is None, "these checks need the whole journal"
    return Counter(
        e.booking_id for _, events in stored.events() for e in events if isinstance(e, Held)
    )


def acknowledged(answers: dict[str, Any]) -> dict[str, Record]:
    """The first answers that told the client 'your booking exists', by tag."""
    acks: dict[str, Record] = {}
    for tag, answer in answers.items():
        if isinstance(answer, Reply) and answer.results[0].ok:
            assert answer.results[0].kind == "created"
            assert answer.results[0].record is not None
            acks[tag] = answer.results[0].record
    return acks


async def stream_of_bookings(
    handle: Any, crash: Callable[[], None], after_acks: int, after_crash: int = 80
) -> dict[str, Any]:
    """One-booking calls a few ms apart, many in flight at once; `crash` is called once
    `after_acks` bookings are acknowledged, and `after_crash` more calls follow it.
    Call k books trips(…)[k] under tag s<k>. Answers (Reply or exception) by tag."""
    calls: dict[str, asyncio.Future[Reply]] = {}
    crashed_at = -1
    while crashed_at < 0 or len(calls) < crashed_at + after_crash:
        assert len(calls) < 2000, f"never {after_acks} bookings acknowledged"
        tag = f"s{len(calls)}"
        i, j = trips(len(calls) + 1)[-1]
        calls[tag] = asyncio.ensure_future(submit(handle, [book(tag, i, j)]))
        if crashed_at < 0:
            done = [f for f in calls.values() if f.done()]
            if sum(not f.exception() and f.result().results[0].ok for f in done) >= after_acks:
                crashed_at = len(calls)
                crash()
        await asyncio.sleep(0.004)
    answers = await asyncio.gather(*calls.values(), return_exceptions=True)
    return dict(zip(calls, answers, strict=True))


# ---- the actor process dies ------------------------------------------------------------


async def test_sigkill_between_batches_loses_no_acknowledged_change(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        first = await results(handle, [book(f"a{k}", i, j) for k, (i, j) in enumerate(trips(5))])
        assert all(r.ok and r.kind == "created" for r in first)
        changes = await submit(handle, [Confirm("bk-a0", "user-a0"), Cancel("bk-a1", "user-a1")])
        assert all(r.ok for r in changes.results)
        matrix_before = changes.matrix
        before = await bookings(handle)
        assert {b.status for b in before.values()} == {"held", "confirmed", "cancelled"}
        old_pid = await actor_pid(handle)

        sigkill(old_pid)
        await wait_for_new_process(handle, old_pid)

        assert await bookings(handle) == before
        assert_no_double_sale(before.values())
        assert_bits_match_bookings(stored_state(redis_url, route.route_id))
        # the restarted actor goes on selling exactly what the recovered seat map has free
        end_to_end = pair_index(0, 4, len(route.stations))
        free = (await submit(handle, [])).matrix["second"][end_to_end]
        assert free == matrix_before["second"][end_to_end] > 0
        more = await results(handle, [book(f"b{k}", 0, 4) for k in range(6)])
        assert [r.ok for r in more].count(True) == free
        assert_no_double_sale((await bookings(handle)).values())


async def test_idempotent_repeat_after_restart_returns_the_first_answer(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        (first,) = await results(handle, [book("x", 1, 3, passengers=2)])
        assert first.ok and first.kind == "created" and first.record is not None
        # the booking moves on after its first answer; a repeat must still get that answer
        (paid,) = await results(handle, [Confirm("bk-x", "user-x")])
        assert paid.ok and paid.record is not None and paid.record.status == "confirmed"
        old_pid = await actor_pid(handle)

        sigkill(old_pid)
        await wait_for_new_process(handle, old_pid)

        (repeat,) = await results(handle, [book("x", 1, 3, passengers=2)])
        assert repeat.ok and repeat.kind == "created"
        assert repeat.record == first.record
        assert repeat.record.status == "held"
        listed = await bookings(handle)
        assert list(listed) == ["bk-x"]
        assert listed["bk-x"].status == "confirmed"
        assert listed["bk-x"].seats == first.record.seats
    assert held_counts(redis_url, route.route_id) == {"bk-x": 1}


async def test_sigkill_amid_concurrent_batches_keeps_each_acknowledged_booking_exactly_once(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=10))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        old_pid = await actor_pid(handle)
        answers = await stream_of_bookings(handle, lambda: sigkill(old_pid), after_acks=25)
        assert await actor_pid(handle) != old_pid
        acks = acknowledged(answers)
        assert len(acks) >= 25

        listed = await bookings(handle)
        for tag, rec in acks.items():
            assert listed[rec.booking_id] == rec, tag
        # a booking is all there or not there: one Held each, nothing else in memory
        counts = held_counts(redis_url, route.route_id)
        assert set(counts.values()) == {1}
        assert set(counts) == set(listed)
        assert_no_double_sale(listed.values())

        # the client retries every call it sent, whatever it heard: each key has one booking
        repeats = await results(
            handle,
            [book(tag, i, j) for tag, (i, j) in zip(answers, trips(len(answers)), strict=True)],
        )
        for tag, again in zip(answers, repeats, strict=True):
            bid = f"bk-{tag}"
            if tag in acks:
                assert again.ok and again.kind == "created" and again.record == acks[tag], tag
            elif bid in listed:
                assert again.ok and again.record is not None, tag
                assert again.record.seats == listed[bid].seats, tag
        final = await bookings(handle)
        assert set(held_counts(redis_url, route.route_id).values()) == {1}
        assert_no_double_sale(final.values())
        state = stored_state(redis_url, route.route_id)
        assert_bits_match_bookings(state)
        assert {bid: record(b) for bid, b in state.bookings.items()} == final


# ---- Redis dies or refuses -------------------------------------------------------------


async def test_redis_sigkill_mid_stream_keeps_every_acknowledged_booking(
    local_redis: EmbeddedRedis, route_id_factory: RouteIds
) -> None:
    url = local_redis.url
    route = await create_route(url, route_def(route_id_factory(), rows=10))
    config = actor_config(url, write_timeout=2.0)
    async with route_actor(route.route_id, config) as handle:
        await results(handle, [ListBookings()])  # actor up before the stream starts
        answers = await stream_of_bookings(handle, local_redis.kill, after_acks=20)
    acks = acknowledged(answers)
    assert len(acks) >= 20
    failed = [
        t for t, a in answers.items() if isinstance(a, Reply) and is_unavailable(a.results[0])
    ]
    assert failed, "calls after the crash must answer unavailable"

    assert local_redis.start() == url  # same data dir, same port: the AOF is replayed
    fresh = directory.RemoteRouteActor.options(num_cpus=0).remote(route.route_id, config)
    try:
        listed = await bookings(fresh)
    finally:
        ray.kill(fresh, no_restart=True)
    for tag, rec in acks.items():
        assert listed[rec.booking_id] == rec, tag
    assert_no_double_sale(listed.values())
    assert set(held_counts(url, route.route_id).values()) <= {1}


async def test_failed_write_answers_unavailable_and_memory_stays_as_before(
    local_redis: EmbeddedRedis, route_id_factory: RouteIds
) -> None:
    url = local_redis.url
    route = await create_route(url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(url, write_timeout=2.0)) as handle:
        ok = await submit(handle, [book("a", 0, 2), book("b", 1, 4)])
        assert all(r.ok for r in ok.results)
        before, matrix_before = await bookings(handle), ok.matrix

        local_redis.stop()
        failed = await submit(handle, [book("c", 0, 4), Confirm("bk-a", "user-a")])
        assert all(is_unavailable(r) for r in failed.results)
        assert failed.matrix == matrix_before
        assert local_redis.start() == url

        after = await submit(handle, [ListBookings()])
        assert {r.booking_id: r for r in after.results[0].records or []} == before
        assert after.matrix == matrix_before
        assert stored_state(url, route.route_id).inv.bits == _bits_of(before, seats=6)

        retried = await results(handle, [book("c", 0, 4), Confirm("bk-a", "user-a")])
        assert [r.ok for r in retried] == [True, True]
        assert retried[0].kind == "created"
        assert retried[1].record is not None and retried[1].record.status == "confirmed"
    assert held_counts(url, route.route_id) == {"bk-a": 1, "bk-b": 1, "bk-c": 1}


def _bits_of(records: dict[str, Record], seats: int) -> list[int]:
    """Seat bits implied by a set of booking records."""
    bits = [0] * seats
    for rec in records.values():
        if rec.status in ("held", "confirmed"):
            for seat in rec.seats:
                bits[seat] |= trip_mask(rec.from_idx, rec.to_idx)
    return bits


async def test_lost_append_reply_is_not_retried_into_a_second_journal_entry(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with proxied_actor(redis_url, route.route_id) as (proxy, handle):
        assert (await results(handle, [book("a")]))[0].ok  # script loaded, path warm
        proxy.lose_next = True
        (lost,) = await results(handle, [book("b", 1, 3)])
        assert proxy.lost == 1
        # the write landed but its answer did not: the client hears "unavailable" and
        # the journal holds the batch once; a blind resend would have journalled it twice
        assert is_unavailable(lost)
        assert held_counts(redis_url, route.route_id) == {"bk-a": 1, "bk-b": 1}
        (again,) = await results(handle, [book("b", 1, 3)])
        assert again.ok and again.kind == "created"
        assert set(await bookings(handle)) == {"bk-a", "bk-b"}
    assert_bits_match_bookings(stored_state(redis_url, route.route_id))


async def test_an_append_answered_after_the_write_timeout_is_unavailable_and_journalled_once(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    # The actor gives up on an append after `write_timeout`: it may or may not have landed
    # (here it did; only its answer was late). The batch answers "unavailable", memory is
    # rebuilt from Redis, and the retry with the same key finds the booking, not a second.
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with proxied_actor(redis_url, route.route_id, write_timeout=0.5) as (proxy, handle):
        assert (await results(handle, [book("a")]))[0].ok  # script loaded, path warm
        proxy.delay_next = 2.0
        (late,) = await results(handle, [book("b", 1, 3)])
        assert proxy.delayed == 1
        assert is_unavailable(late)
        (again,) = await results(handle, [book("b", 1, 3)])
        assert again.ok and again.kind == "created"
        assert set(await bookings(handle)) == {"bk-a", "bk-b"}
        # once the late answer is in, the next append on that connection gets its own
        # answer, not the late one (before that, it waits behind it like any other)
        await asyncio.sleep(2.0)
        assert (await results(handle, [book("c", 2, 4)]))[0].ok
    assert held_counts(redis_url, route.route_id) == {"bk-a": 1, "bk-b": 1, "bk-c": 1}
    assert_bits_match_bookings(stored_state(redis_url, route.route_id))


async def test_idle_deactivation_waits_for_the_write_in_flight(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    # A snapshot taken while a batch is mid-write holds that batch's events but not its
    # entry id; the entry lands after the snapshot's last_id and recovery would apply it a
    # second time. Here a front end's keeper sweep expires a hold over a slow write while
    # the actor's idle timer runs out.
    route = await create_route(redis_url, route_def(route_id_factory()))
    timing = {"hold_seconds": 0.2, "sweep_interval": 1.0, "idle_seconds": 1.5}
    async with proxied_actor(redis_url, route.route_id, **timing) as (proxy, handle):
        # t=0: the booking, and the actor's sweeper starts (it wakes at t=1, 2, 3 …)
        assert (await results(handle, [book("x")]))[0].ok
        await asyncio.sleep(0.4)  # the hold is due; the sweeper has not woken yet
        proxy.delay_next = 2.5
        with contextlib.suppress(RayActorError):  # the actor may go away right after
            await asyncio.wait_for(handle.sweep.remote(), 30)
        assert proxy.delayed == 1
        await wait_dead(handle)
    state = stored_state(redis_url, route.route_id)
    assert state.bookings["bk-x"].status == "expired"
    assert_bits_match_bookings(state)


# ---- snapshots and corruption ----------------------------------------------------------


def _workload(count: int) -> list[list[Command]]:
    """Batches that exercise every event: holds, waitlist, confirm, cancel, change, expiry."""
    books = [book(f"w{k}", i, j) for k, (i, j) in enumerate(trips(count))]
    waiting = [msgspec.structs.replace(book(f"q{k}", 0, 4), waitlist=True) for k in range(3)]
    return [
        books[:4],
        books[4:8],
        [Confirm("bk-w0", "user-w0"), Cancel("bk-w1", "user-w1"), *books[8:10]],
        waiting,
        [Cancel("bk-w2", "user-w2"), Change("bk-w3", "user-w3", "S0", "S1", "second")],
        books[10:14],
        [Confirm("bk-w5", "user-w5"), Cancel("bk-q2", "user-q2")],
        [],  # only the sweep: the holds of the first batches run out here
        books[14:],
    ]


async def test_snapshot_plus_tail_rebuilds_exactly_the_state_a_full_replay_gives(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    sync = redis.Redis.from_url(redis_url)
    try:
        writer = journal.Journal(
            redis_client, route.route_id, journal.activate(sync, route.route_id)
        )
        live = RouteState.empty(route)
        history: list[Event] = []
        last_id, since, snapshots = "0-0", 0, 0
        now = 1000.0
        for commands in _workload(18):
            # a batch with no commands comes after the first holds ran out
            now += 10.0 if commands else 700.0
            # what the actor does per batch: sweep, decide, persist, snapshot every 5 events
            events, _ = run_batch(live, [Sweep(), *commands], Policy(600.0), now)
            if events:
                last_id = await writer.append(encode(events))
                history.extend(events)
                since += len(events)
            if since >= 5:
                await writer.write_snapshot(to_snapshot(live), last_id)
                since, snapshots = 0, snapshots + 1
        kinds = {type(e).__name__ for e in history}
        assert kinds == {
            "Held",
            "Waitlisted",
            "Served",
            "Confirmed",
            "Cancelled",
            "Expired",
            "Changed",
        }
        assert snapshots >= 2 and since > 0, "recovery must use a snapshot and a tail"

        recovered, recovered_last = recover(sync, route.route_id)
    finally:
        sync.close()
    replayed = RouteState.empty(route)
    for event in history:
        apply(replayed, event)
    assert recovered_last == last_id
    assert_same_state(recovered, replayed)
    assert_same_state(recovered, live)


async def test_actor_snapshots_trim_the_journal_and_a_restart_recovers_the_same_bookings(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=4))
    async with route_actor(route.route_id, actor_config(redis_url, snapshot_every=3)) as handle:
        for commands in _workload(20):
            await results(handle, commands)
        assert await redis_client.hexists(keys.snapshot(route.route_id), "data")
        # untrimmed, each of the 8 batches with events would still be there
        assert await redis_client.xlen(keys.journal(route.route_id)) <= 4
        listed = await bookings(handle)
        state = stored_state(redis_url, route.route_id)
        assert {bid: record(b) for bid, b in state.bookings.items()} == listed
        assert_bits_match_bookings(state)
        old_pid = await actor_pid(handle)

        sigkill(old_pid)
        await wait_for_new_process(handle, old_pid)

        assert await bookings(handle) == listed
        # the seat map restored from the snapshot sells exactly what it says is free
        free = (await submit(handle, [])).matrix["second"]
        trip, count = max(enumerate(free), key=lambda pair: pair[1])
        assert count > 0
        i, j = _pair(trip, len(route.stations))
        more = await results(handle, [book(f"m{k}", i, j) for k in range(count + 2)])
        assert [r.ok for r in more].count(True) == count
        assert_bits_match_bookings(stored_state(redis_url, route.route_id))


async def test_recover_fails_loudly_on_a_corrupt_entry_or_snapshot(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    rid = route.route_id
    sync = redis.Redis.from_url(redis_url)
    try:
        writer = journal.Journal(redis_client, rid, journal.activate(sync, rid))
        live = RouteState.empty(route)
        events, _ = run_batch(live, [book("a"), book("b")], Policy(), 1000.0)
        last_id = await writer.append(encode(events))
        assert recover(sync, rid)[0].bookings.keys() == {"bk-a", "bk-b"}

        await redis_client.xadd(keys.journal(rid), {"e": b"\x93not events"})
        with pytest.raises(JournalCorrupt, match="corrupt"):
            recover(sync, rid)

        await redis_client.delete(keys.journal(rid))
        await redis_client.hset(keys.snapshot(rid), mapping={"data": b"\xff", "last_id": last_id})
        with pytest.raises(JournalCorrupt, match="snapshot"):
            recover(sync, rid)
    finally:
        sync.close()


async def test_actor_on_a_corrupt_journal_refuses_to_serve(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        assert (await results(handle, [book("a")]))[0].ok
        await redis_client.xadd(keys.journal(route.route_id), {"e": b"garbage"})
        sigkill(await actor_pid(handle))
        close_plane_clients()  # the next calls look the restarted actor up through Ray
        # the restart's recovery hits the bad entry: every call fails, none is answered
        for _ in range(2):
            with pytest.raises(RayActorError, match="JournalCorrupt"):
                await submit(handle, [book("b")])


async def test_live_actor_whose_reload_meets_corruption_fails_calls_instead_of_hanging(
    local_redis: EmbeddedRedis, route_id_factory: RouteIds
) -> None:
    url = local_redis.url
    route = await create_route(url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(url, write_timeout=2.0)) as handle:
        assert (await results(handle, [book("a")]))[0].ok
        local_redis.stop()
        assert is_unavailable((await results(handle, [book("b")]))[0])
        local_redis.start()
        client = redis.asyncio.Redis.from_url(url)
        try:
            await client.xadd(keys.journal(route.route_id), {"e": b"garbage"})
        finally:
            await client.aclose()
        # memory must be rebuilt before the next batch, and the journal cannot be read
        for _ in range(2):
            with pytest.raises(protocol.RemoteError, match="JournalCorrupt"):
                await submit(handle, [book("c")], timeout=20)

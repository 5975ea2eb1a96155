"""Epoch fencing: once a newer activation of a route exists, the older one can never write.

Real local Ray and real Redis: a second actor for the same route is started while the
first is alive (as after a network partition or a slow restart), or the epoch is bumped
directly, and the first one's next write must be refused and the actor must stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import ray
import redis
import redis.asyncio
from ray.exceptions import RayActorError
from support.actors import (
    actor_config,
    assert_bits_match_bookings,
    assert_no_double_sale,
    book,
    bookings,
    create_route,
    is_unavailable,
    results,
    route_actor,
    route_def,
    stored_state,
    submit,
    trips,
    wait_dead,
)

from actors import directory
from actors.config import ActorConfig
from actors.domain.messages import Confirm
from actors.plane import protocol
from actors.storage import journal, keys

pytestmark = pytest.mark.usefixtures("ray_local")

RouteIds = Callable[[], str]


async def test_second_activation_fences_the_first_which_refuses_writes_and_stops(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=4))
    config = actor_config(redis_url)
    async with route_actor(route.route_id, config) as first:
        early = await results(first, [book(f"e{k}", i, j) for k, (i, j) in enumerate(trips(4))])
        assert all(r.ok for r in early)
        first_epoch = (await first.info.remote())["epoch"]

        # the same route activated again elsewhere: another name, another namespace
        second = directory.RemoteRouteActor.options(
            name=directory.actor_name(route.route_id), namespace="fencing-test", num_cpus=0
        ).remote(route.route_id, config)
        try:
            assert (await second.info.remote())["epoch"] > first_epoch

            # both are offered the same remaining seats at the same time
            tags = [f"c{k}" for k in range(16)]
            calls = [
                submit(first if n % 2 else second, [book(tag, i, j)])
                for n, (tag, (i, j)) in enumerate(zip(tags, trips(16), strict=True))
            ]
            answers = await asyncio.gather(*calls, return_exceptions=True)
            from_first = [a for n, a in enumerate(answers) if n % 2]
            from_second = [a for n, a in enumerate(answers) if not n % 2]
            # the old activation answers "unavailable" (or is already gone), never ok
            for answer in from_first:
                if isinstance(answer, BaseException):
                    assert isinstance(answer, RayActorError | protocol.PlaneError), answer
                else:
                    assert is_unavailable(answer.results[0])
            assert any(not isinstance(a, BaseException) for a in from_first)
            assert all(not isinstance(a, BaseException) for a in from_second)
            await wait_dead(first, timeout=5.0)

            listed = await bookings(second)
            assert {f"bk-e{k}" for k in range(4)} <= set(listed)
            assert not {f"bk-{t}" for t in tags[1::2]} & set(listed)
            sold = [a.results[0] for a in from_second]
            assert any(r.ok for r in sold)
            assert all(r.ok or (r.error and r.error["type"] == "sold-out") for r in sold)
            assert_no_double_sale(listed.values())
            state = stored_state(redis_url, route.route_id)
            assert set(state.bookings) == set(listed)
            assert_bits_match_bookings(state)
        finally:
            ray.kill(second, no_restart=True)


async def test_epoch_bump_refuses_the_next_write_and_nothing_is_journalled(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        (held,) = await results(handle, [book("a")])
        assert held.ok
        journalled = await redis_client.xlen(keys.journal(route.route_id))
        sync = redis.Redis.from_url(redis_url)
        try:
            journal.activate(sync, route.route_id)  # a successor has taken over
        finally:
            sync.close()

        refused = await results(handle, [book("b"), Confirm("bk-a", "user-a")])
        assert all(is_unavailable(r) for r in refused)
        assert await redis_client.xlen(keys.journal(route.route_id)) == journalled
        await wait_dead(handle, timeout=5.0)
    state = stored_state(redis_url, route.route_id)
    assert set(state.bookings) == {"bk-a"}
    assert state.bookings["bk-a"].status == "held"


async def test_fenced_actor_is_not_restarted_and_its_successor_serves_every_booking(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    config = actor_config(redis_url)
    async with route_actor(route.route_id, config) as old:
        (first,) = await results(old, [book("a", 1, 3)])
        assert first.ok and first.record is not None
        sync = redis.Redis.from_url(redis_url)
        try:
            journal.activate(sync, route.route_id)
        finally:
            sync.close()
        assert is_unavailable((await results(old, [book("b")]))[0])
        await wait_dead(old, timeout=5.0)
        # the name is free again: the directory makes a fresh activation on the next use
        new = await _get_or_create_eventually(route.route_id, config)
        try:
            (again,) = await results(new, [book("a", 1, 3)])
            assert again.ok and again.record == first.record
            (b,) = await results(new, [book("b")])
            assert b.ok and b.kind == "created"
        finally:
            ray.kill(new, no_restart=True)


async def _get_or_create_eventually(route_id: str, config: ActorConfig) -> Any:
    """The directory's handle once the dead actor's name has been released."""
    for _ in range(100):
        handle = directory.get_or_create(route_id, config)
        try:
            await asyncio.wait_for(handle.info.remote(), 30)
            return handle
        except RayActorError:
            await asyncio.sleep(0.1)
    raise AssertionError("no fresh activation of the route")

"""Requests that arrive while an append is in flight are decided on top of it and go to
Redis next (actors/writes.py); if that append fails, they are refused whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis.asyncio
from support.actors import (
    actor_config,
    assert_bits_match_bookings,
    assert_no_double_sale,
    bookings,
    create_route,
    is_unavailable,
    results,
    route_actor,
    route_def,
    stored_state,
)
from support.actors import book as booking

from actors.storage import keys

pytestmark = pytest.mark.usefixtures("ray_local")

RouteIds = Callable[[], str]
#: long enough for the requests sent meanwhile to reach the actor during the append
PAUSE_MS = 400


async def _pause_writes(client: redis.asyncio.Redis) -> None:
    # every write command waits PAUSE_MS: the actor's append is "in flight" that long
    await client.execute_command("CLIENT", "PAUSE", PAUSE_MS, "WRITE")


async def test_requests_arriving_during_an_append_are_decided_on_it_and_journalled_next(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=3, letters="A"))
    rid = route.route_id
    async with route_actor(rid, actor_config(redis_url)) as handle:
        await results(handle, [booking("warm", 0, 1)])  # the plane is connected
        journalled = await redis_client.xlen(keys.journal(rid))
        await _pause_writes(redis_client)
        first = asyncio.create_task(results(handle, [booking("a")]))
        await asyncio.sleep(PAUSE_MS / 4000)
        # decided while the first append waits: b takes the last seat, c is refused
        decided = (await handle.info.remote())["commands"]
        later = [asyncio.create_task(results(handle, [booking(t)])) for t in ("b", "c")]
        await asyncio.sleep(PAUSE_MS / 4000)
        # a's append still waits, and b and c are decided already (not merely queued)
        assert not first.done()
        assert (await handle.info.remote())["commands"] == decided + 2
        (a,) = await first
        (b,), (c,) = await asyncio.gather(*later)
        assert a.kind == "created" and b.kind == "created"
        assert c.error is not None and c.error["type"] == "sold-out"
        # b and c went as one append after a's: two entries, in the order decided
        assert await redis_client.xlen(keys.journal(rid)) == journalled + 2
        memory = await bookings(handle)
    stored = stored_state(redis_url, rid)
    assert {bid for bid, b in stored.bookings.items()} == set(memory)
    assert_no_double_sale(memory.values())
    assert_bits_match_bookings(stored)


async def test_requests_decided_on_a_failed_append_are_refused_and_never_journalled(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=2, letters="A"))
    rid = route.route_id
    async with route_actor(rid, actor_config(redis_url)) as handle:
        await results(handle, [booking("warm", 0, 1)])
        journalled = await redis_client.xlen(keys.journal(rid))
        # key x was answered "sold out" from a front end's cache a moment ago: its late
        # first attempt must not be journalled (the append script refuses the batch)
        seconds, _ = await redis_client.time()
        await redis_client.set(keys.idem_marker(rid, "user-x", "key-x"), f"c{seconds}")
        await _pause_writes(redis_client)
        first = asyncio.create_task(results(handle, [booking("x", 1, 4)]))
        await asyncio.sleep(PAUSE_MS / 4000)
        # y is decided on top of x, while x's append waits
        second = asyncio.create_task(results(handle, [booking("y", 0, 1)]))
        (x,) = await first
        (y,) = await second
        assert is_unavailable(x) and is_unavailable(y)
        assert await redis_client.xlen(keys.journal(rid)) == journalled
        assert await redis_client.get(keys.idem_marker(rid, "user-y", "key-y")) is None
        # rebuilt from Redis, the route decides the retries afresh
        (y2,) = await results(handle, [booking("y", 0, 1)])
        (x2,) = await results(handle, [booking("x", 1, 4)])
        assert y2.kind == "created" and x2.kind == "created"
        assert await redis_client.xlen(keys.journal(rid)) == journalled + 2

"""Idempotency markers: written by the append script with the journal, checked against the
"sold out" answers front ends give from their caches."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis.asyncio
from support.actors import (
    actor_config,
    create_route,
    is_unavailable,
    results,
    route_actor,
    route_def,
)
from support.actors import book as booking

from actors.storage import keys

pytestmark = pytest.mark.usefixtures("ray_local")

RouteIds = Callable[[], str]


def _marker(route_id: str, tag: str) -> str:
    return keys.idem_marker(route_id, f"user-{tag}", f"key-{tag}")


async def _redis_now(client: redis.asyncio.Redis) -> int:
    seconds, _ = await client.time()
    return int(seconds)


async def test_a_journalled_booking_marks_its_key_in_the_same_write(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory(), rows=1, letters="A"))
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        (held,) = await results(handle, [booking("a")])
        assert held.ok
        assert await redis_client.get(_marker(route.route_id, "a")) == b"f"
        assert await redis_client.ttl(_marker(route.route_id, "a")) > keys.IDEM_MARKER_TTL - 60
        # a refusal journals nothing and marks nothing: its retry is decided afresh
        (refused,) = await results(handle, [booking("b")])
        assert refused.error is not None and refused.error["type"] == "sold-out"
        assert await redis_client.get(_marker(route.route_id, "b")) is None


async def test_a_booking_whose_retry_was_answered_from_a_cache_meanwhile_is_not_journalled(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    rid = route.route_id
    async with route_actor(rid, actor_config(redis_url)) as handle:
        (first,) = await results(handle, [booking("a")])
        assert first.ok
        journalled = await redis_client.xlen(keys.journal(rid))
        # the client retried key x while its first request was on its way, and a front end
        # answered the retry "sold out" from its cache
        await redis_client.set(_marker(rid, "x"), f"c{await _redis_now(redis_client)}")

        answers = await results(handle, [booking("x"), booking("y")])
        assert all(is_unavailable(r) for r in answers)  # both answers now say "not booked"
        assert await redis_client.xlen(keys.journal(rid)) == journalled
        assert await redis_client.get(_marker(rid, "x")) == b"f"
        assert await redis_client.get(_marker(rid, "y")) is None

        # the next retries are decided afresh against the rebuilt state
        again = await results(handle, [booking("x"), booking("y")])
        assert [r.kind for r in again] == ["created", "created"]
        assert await redis_client.xlen(keys.journal(rid)) == journalled + 1


async def test_an_old_cached_answer_does_not_block_a_later_booking_of_the_key(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: RouteIds
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    rid = route.route_id
    async with route_actor(rid, actor_config(redis_url)) as handle:
        long_ago = await _redis_now(redis_client) - keys.CLASH_WINDOW_SECONDS - 5
        await redis_client.set(_marker(rid, "x"), f"c{long_ago}")
        (held,) = await results(handle, [booking("x")])
        assert held.ok and held.kind == "created"
        assert await redis_client.get(_marker(rid, "x")) == b"f"

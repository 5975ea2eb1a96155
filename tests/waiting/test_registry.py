"""Sales in the real Redis: a route is in one sale at a time, claimed all or none, freed
when its sale closes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import redis.asyncio
from support.actors import create_route, route_def

from server.waiting import policy
from server.waiting.registry import NoSuchRoute, RouteInSale, SaleRegistry
from server.waiting.sales import SaleIn

Ids = Callable[[], str]
AT = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


async def _routes(url: str, ids: Ids, n: int) -> list[str]:
    return [(await create_route(url, route_def(ids()))).route_id for _ in range(n)]


async def test_a_sale_claims_its_routes_and_reads_back_as_made(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: Ids
) -> None:
    routes = await _routes(redis_url, route_id_factory, 2)
    registry = SaleRegistry(redis_client)
    sale = await registry.create(SaleIn(routes, AT, 50.0))
    assert await SaleRegistry(redis_client).get(sale.sale_id) == sale  # another front end
    assert (await registry.all())[sale.sale_id] == sale
    assert [await registry.sale_of(r) for r in routes] == [sale.sale_id] * 2
    figures = await registry.queues.figures(sale.sale_id)
    assert (figures.state, figures.opened) == (policy.SCHEDULED, False)


async def test_a_route_in_a_live_sale_cannot_join_another_until_it_closes(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: Ids
) -> None:
    a, b, c = await _routes(redis_url, route_id_factory, 3)
    registry = SaleRegistry(redis_client)
    first = await registry.create(SaleIn([a, b], AT, None))
    with pytest.raises(RouteInSale, match=f"Route {b} is in sale {first.sale_id}"):
        await registry.create(SaleIn([c, b], AT, None))
    assert await registry.sale_of(c) is None  # all or none: c was not claimed
    await registry.close(first)
    assert (await registry.queues.figures(first.sale_id)).state == policy.CLOSED
    second = await registry.create(SaleIn([c, b], AT, None))
    assert await registry.sale_of(b) == second.sale_id
    assert await registry.sale_of(a) is None


async def test_a_sale_of_an_unknown_route_says_to_create_it(
    redis_client: redis.asyncio.Redis, redis_url: str, route_id_factory: Ids
) -> None:
    (known,) = await _routes(redis_url, route_id_factory, 1)
    with pytest.raises(NoSuchRoute, match="There is no route NOPE1-20261201; create it first"):
        await SaleRegistry(redis_client).create(SaleIn([known, "NOPE1-20261201"], AT, None))
    assert await SaleRegistry(redis_client).sale_of(known) is None

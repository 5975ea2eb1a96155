"""The route actor answers a batch over its data plane, with a real Redis behind it."""

from __future__ import annotations

import pytest
import redis.asyncio
from support.actors import actor_config, route_actor, submit

from actors.domain.messages import Book, Passenger
from actors.domain.route import RouteDef
from actors.storage import routes_store

pytestmark = pytest.mark.usefixtures("ray_local")


async def test_batch_books_each_seat_once_and_reports_availability(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    route = RouteDef.from_dict(
        {
            "train": "S1",
            "date": "2026-12-01",
            "stations": ["A", "B", "C"],
            "coaches": [{"number": "01", "class": "second", "rows": 1, "letters": "AB"}],
        }
    )
    await routes_store.create(redis_client, route)
    async with route_actor(route.route_id, actor_config(redis_url)) as handle:
        cmds = [
            Book(f"b{k}", f"u{k}", "k", "f", "A", "C", "second", [Passenger("n", f"p{k}")])
            for k in range(3)
        ]
        reply = await submit(handle, cmds)
        assert [r.ok for r in reply.results] == [True, True, False]
        assert reply.results[2].error is not None
        assert reply.results[2].error["type"] == "sold-out"
        seats = {s for r in reply.results[:2] if r.record for s in r.record.seats}
        assert seats == {0, 1}
        assert reply.matrix == {"second": [0, 0, 0]}

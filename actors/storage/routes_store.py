"""Route definitions in Redis: created once, read by front ends and actors."""

from __future__ import annotations

import json

import redis
import redis.asyncio as aredis

from actors.domain.route import RouteDef
from actors.storage import keys


class RouteNotFound(LookupError):
    """No route with this id has been created."""


def _dump(route: RouteDef) -> str:
    return json.dumps(route.to_dict(), sort_keys=True, ensure_ascii=False)


#: the definition and every index entry of a new route, in one atomic step
_CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[1]) end
return 1
"""


def index_keys(route: RouteDef) -> list[str]:
    """Every index sorted set a route belongs to (for listing and search)."""
    out = [keys.ROUTE_IDS, keys.routes_of_date(route.date)]
    for station in route.stations:
        out += [keys.routes_of_station(station), keys.routes_of_date_station(route.date, station)]
    return out


async def create(client: aredis.Redis, route: RouteDef) -> tuple[bool, RouteDef]:
    """Store the route unless it exists; returns (created, the stored definition)."""
    script = client.register_script(_CREATE)
    created = await script(
        keys=[keys.ROUTES, *index_keys(route)], args=[route.route_id, _dump(route)]
    )
    if created:
        return True, route
    existing = await fetch(client, route.route_id)
    return False, existing


async def fetch(client: aredis.Redis, route_id: str) -> RouteDef:
    """The stored definition; raises RouteNotFound."""
    raw = await client.hget(keys.ROUTES, route_id)
    if raw is None:
        raise RouteNotFound(route_id)
    return RouteDef.from_dict(json.loads(raw))


async def fetch_many(client: aredis.Redis, route_ids: list[str]) -> list[RouteDef]:
    """The stored definitions of these ids, in their order (ids with none are skipped)."""
    if not route_ids:
        return []
    raw = await client.hmget(keys.ROUTES, route_ids)
    return [RouteDef.from_dict(json.loads(v)) for v in raw if v is not None]


async def page(
    client: aredis.Redis,
    date: str | None = None,
    station: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> tuple[list[RouteDef], str | None]:
    """Up to `limit` routes by id after `after`, filtered by date and/or station, and the
    id to continue after (None on the last page): O(log n + page) whatever the total."""
    if date is not None and station is not None:
        index = keys.routes_of_date_station(date, station)
    elif date is not None:
        index = keys.routes_of_date(date)
    elif station is not None:
        index = keys.routes_of_station(station)
    else:
        index = keys.ROUTE_IDS
    start = "-" if after is None else f"({after}"
    raw = await client.zrangebylex(index, start, "+", start=0, num=limit + 1)
    ids = [r.decode() if isinstance(r, bytes) else str(r) for r in raw]
    routes = await fetch_many(client, ids[:limit])
    return routes, ids[limit - 1] if len(ids) > limit else None


async def ids_of_date(client: aredis.Redis, date: str) -> list[str]:
    """Every route id of a date."""
    raw = await client.zrange(keys.routes_of_date(date), 0, -1)
    return [r.decode() if isinstance(r, bytes) else str(r) for r in raw]


async def ensure_indexed(client: aredis.Redis) -> int:
    """Index routes stored before the indexes existed (once per database; idempotent).

    Routes created since are indexed by `create` itself, so racing front ends, or a
    create during the backfill, leave nothing out. Returns how many were (re)indexed.
    """
    if await client.exists(keys.ROUTE_INDEX_DONE):
        return 0
    count = 0
    cursor = 0
    while True:
        cursor, chunk = await client.hscan(keys.ROUTES, cursor, count=500)
        assert isinstance(chunk, dict)
        pipe = client.pipeline(transaction=False)
        for raw_id, raw in chunk.items():
            route_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            for index in index_keys(RouteDef.from_dict(json.loads(raw))):
                pipe.zadd(index, {route_id: 0})
            count += 1
        await pipe.execute()
        if cursor == 0:
            break
    await client.set(keys.ROUTE_INDEX_DONE, b"1")
    return count


def fetch_sync(client: redis.Redis, route_id: str) -> RouteDef:
    """Sync variant for the actor constructor."""
    raw = client.hget(keys.ROUTES, route_id)
    if raw is None:
        raise RouteNotFound(route_id)
    return RouteDef.from_dict(json.loads(raw))


async def migrate_keys(client: aredis.Redis) -> int:
    """Rename the keys from before the hash tags (the catalog's, the users': keys.retag)
    on one server; returns how many. Idempotent, and safe for front ends starting at once
    (a key another already renamed is skipped)."""
    if isinstance(client, aredis.RedisCluster):
        return 0  # the cluster layout has always been the tagged one
    count = 0
    for pattern in keys.UNTAGGED:
        async for raw in client.scan_iter(match=pattern, count=500):
            old = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                count += bool(await client.renamenx(old, keys.retag(old)))
            except redis.ResponseError:  # gone meanwhile: another front end renamed it
                continue
    return count

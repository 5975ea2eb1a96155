"""Route definitions in Redis: created once, read by front ends and actors."""

from __future__ import annotations

import json

import redis
import redis.asyncio as aredis

from actors import keys
from actors.route import RouteDef


class RouteNotFound(LookupError):
    """No route with this id has been created."""


def _dump(route: RouteDef) -> str:
    return json.dumps(route.to_dict(), sort_keys=True, ensure_ascii=False)


async def create(client: aredis.Redis, route: RouteDef) -> tuple[bool, RouteDef]:
    """Store the route unless it exists; returns (created, the stored definition)."""
    created = await client.hsetnx(keys.ROUTES, route.route_id, _dump(route))
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


async def fetch_all(client: aredis.Redis) -> list[RouteDef]:
    """Every stored route, sorted by id."""
    raw = await client.hgetall(keys.ROUTES)
    return sorted((RouteDef.from_dict(json.loads(v)) for v in raw.values()), key=_by_id)


def _by_id(route: RouteDef) -> str:
    return route.route_id


def fetch_sync(client: redis.Redis, route_id: str) -> RouteDef:
    """Sync variant for the actor constructor."""
    raw = client.hget(keys.ROUTES, route_id)
    if raw is None:
        raise RouteNotFound(route_id)
    return RouteDef.from_dict(json.loads(raw))

"""A route's state back from Redis: the latest snapshot plus the journal tail."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import redis
import structlog

from actors.domain.state import RouteState, apply, from_snapshot
from actors.domain.views import availability_matrix
from actors.storage import journal, projection, routes_store, topology
from actors.storage.formats import availability_version, encode_availability

log = structlog.get_logger("ticketd.actor")


def recover(client: redis.Redis, route_id: str) -> tuple[RouteState, str]:
    """Latest snapshot plus the journal tail: the state before the crash, exactly."""
    route = routes_store.fetch_sync(client, route_id)
    stored = journal.load(client, route_id)
    if stored.snapshot is not None:
        try:
            state = from_snapshot(stored.snapshot)
        except msgspec.DecodeError as exc:
            raise journal.JournalCorrupt(f"snapshot of {route_id} is corrupt: {exc}") from exc
    else:
        state = RouteState.empty(route)
    last_id = stored.snapshot_last_id
    for entry_id, events in stored.events():
        for event in events:
            apply(state, event)
        last_id = entry_id
    return state, last_id


def activation(
    client: redis.Redis, route_id: str, replicas: int, placed: Callable[[redis.Redis, str], object]
) -> tuple[int, RouteState, str]:
    """A new activation's storage steps: take an epoch, record where it runs (`placed`),
    recover the state and publish what it feeds. Repeated while a Redis Cluster fails
    over (topology.patiently): each step is safe to repeat. The epoch, state, last id."""

    def steps() -> tuple[int, RouteState, str]:
        epoch = journal.activate(client, route_id, replicas)
        placed(client, route_id)
        state, last_id = recover(client, route_id)
        publish_recovered(client, route_id, epoch, state)
        return epoch, state, last_id

    return topology.patiently(client, steps)


def publish_recovered(client: redis.Redis, route_id: str, epoch: int, state: RouteState) -> None:
    """Store what the recovered state feeds, at once: its availability (a route journalled
    before stored availability existed, or whose last write failed, then has it too), and
    on a Redis Cluster its read models outside the route's slot (projection.project_all:
    whatever a crash or a failover left out of them is back)."""
    if isinstance(client, redis.RedisCluster):
        projection.project_all(client, route_id, state)
    # newer than anything an earlier activation stored
    stored = encode_availability(availability_version(epoch, 0), availability_matrix(state))
    try:
        journal.publish_availability(client, route_id, epoch, stored)
    except journal.Fenced:
        # a newer activation already exists: this one is fenced at its first append
        log.warning("route actor fenced at activation", route_id=route_id)

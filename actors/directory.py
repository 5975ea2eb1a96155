"""Finds or creates the route actor for a route id (virtual-actor style)."""

from __future__ import annotations

from typing import Any

import ray

from actors.actor import RouteActor
from actors.config import NAMESPACE, ActorConfig
from actors.placement import Placement

RemoteRouteActor = ray.remote(RouteActor)


def actor_name(route_id: str) -> str:
    """The Ray actor name of a route: `route:<route_id>`."""
    return f"route:{route_id}"


def get_or_create(
    route_id: str, config: ActorConfig, placement: dict[str, Any] | None = None
) -> Any:
    """The route's actor handle, creating the actor on first use.

    Blocking (a GCS round trip): callers cache handles and call this off the event loop.
    `placement` (Ray options from actors/placement.py) places a new actor; an existing
    one stays put. Without it, Ray's best-effort SPREAD.
    """
    where = placement if placement is not None else {"scheduling_strategy": "SPREAD"}
    return RemoteRouteActor.options(
        name=actor_name(route_id),
        namespace=NAMESPACE,
        get_if_exists=True,
        lifetime="detached",
        max_restarts=-1,
        # every command is idempotent (bookings by key, the rest by state), so a call
        # interrupted by an actor crash is safe to run again on the restarted actor
        max_task_retries=3,
        # placement only: the actor idles on I/O most of the time, and a 0-CPU request lets
        # a node host many routes instead of one per core
        num_cpus=0,
        **where,
    ).remote(route_id, config)


def existing(route_id: str) -> Any | None:
    """The route's live actor handle, or None if it has none (blocking: a GCS lookup)."""
    try:
        return ray.get_actor(actor_name(route_id), namespace=NAMESPACE)
    except ValueError:
        return None


class Directory:
    """Caches actor handles per route id."""

    def __init__(self, config: ActorConfig, route_nodes: dict[str, str] | None = None) -> None:
        self.config = config
        self._handles: dict[str, Any] = {}
        # route_nodes: the Ray labels of the nodes route actors run on (placement.py)
        self._placement = Placement(config.redis_url, route_nodes)

    def get(self, route_id: str) -> Any:
        """Cached handle, or get-or-create (blocking on a miss)."""
        handle = self._handles.get(route_id)
        if handle is None:
            # placement only for an actor that is not there yet (placement.py); two front
            # ends racing still end with one actor (get_if_exists)
            handle = existing(route_id)
            if handle is None:
                where = self._placement.options(route_id)
                handle = get_or_create(route_id, self.config, where)
            self._handles[route_id] = handle
        return handle

    def cached(self, route_id: str) -> Any | None:
        """The cached handle without creating anything."""
        return self._handles.get(route_id)

    def forget(self, route_id: str) -> None:
        """Drop a handle whose actor died for good (deactivated or fenced)."""
        self._handles.pop(route_id, None)

"""RouteActor: the Ray actor that owns one route's seat map.

Only what Ray calls (the control plane: `address`, `info`, `sweep`); the route's work,
the data plane included, is `RouteCore`'s (actors/core.py), kept out of the class Ray
instruments.
"""

from __future__ import annotations

from typing import Any

from actors.config import ActorConfig
from actors.core import Reply, RouteCore

__all__ = ["Reply", "RouteActor"]


class RouteActor:
    """Serializes every change to one route's seats; Redis is the durable backstop."""

    def __init__(self, route_id: str, config: ActorConfig) -> None:
        self.core = RouteCore(route_id, config)

    async def address(self) -> dict[str, Any]:
        """Where this activation's data plane listens (started on first ask)."""
        return await self.core.address()

    async def info(self) -> dict[str, Any]:
        """Operator view: epoch, counts, recovery time, where it runs."""
        return await self.core.info()

    async def sweep(self) -> bytes:
        """Expire due holds now (front ends call this for routes with overdue holds)."""
        return await self.core.sweep()

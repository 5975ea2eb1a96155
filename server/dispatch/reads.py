"""Reads of a route's actor outside the batches: the availability snapshot for searches
and availability reads (refreshed at most every TICKETD_AVAILABILITY_REFRESH seconds,
one refresh per route in flight), and the console's seat map."""

from __future__ import annotations

import asyncio
import time

from actors.plane import protocol
from server.dispatch.channel import Channel
from server.dispatch.connector import Connector
from server.dispatch.errors import DispatchError, RouteUnavailable
from server.settings import Settings


class Reads:
    """Availability and seat-map reads of each route's actor."""

    def __init__(self, settings: Settings, connector: Connector) -> None:
        self.settings = settings
        self.connector = connector

    def fresh_matrix(self, ch: Channel) -> dict[str, list[int]] | None:
        """The cached availability if it is within the refresh interval, else None."""
        if (
            ch.matrix is not None
            and time.monotonic() - ch.fetched <= self.settings.availability_refresh
        ):
            return ch.matrix
        return None

    async def matrix(self, ch: Channel) -> dict[str, list[int]]:
        """Availability for reads: cached, refreshed from the actor when stale."""
        fresh = self.fresh_matrix(ch)
        if fresh is not None:
            return fresh
        if ch.refreshing is None or ch.refreshing.done():
            # one refresh per route in flight, however many readers are waiting
            ch.refreshing = asyncio.create_task(self._refresh(ch))
        await asyncio.shield(ch.refreshing)
        assert ch.matrix is not None
        return ch.matrix

    async def _refresh(self, ch: Channel) -> None:
        try:
            link = await self.connector.link(ch)
            raw = await link.request(protocol.OP_AVAILABILITY)
        except (DispatchError, protocol.PlaneError):
            if ch.matrix is not None:
                return  # serve the last known figures rather than fail a read
            raise RouteUnavailable(ch.route.route_id) from None
        ch.take_raw(raw)

    async def read(self, ch: Channel, op: int) -> bytes:
        """One read on the route's data plane outside the batches (the console's seat
        map); RouteUnavailable if the actor cannot answer."""
        try:
            link = await self.connector.link(ch)
            return await link.request(op)
        except protocol.PlaneError:
            raise RouteUnavailable(ch.route.route_id) from None

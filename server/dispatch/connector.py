"""A route's data-plane link, found through Ray: the control plane says where the actor
listens (activating it if needed), the link is the socket to it (docs/architecture.md,
"The planes").

A lost connection, a restarted actor (new address, new epoch) and a fenced or
deactivated one are all normal events: the next request reconnects, one attempt per
route however many requests wait for it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray
import structlog
from ray import exceptions as rex

from actors.directory import Directory
from actors.plane import protocol
from server import metrics
from server.dispatch.channel import Channel
from server.dispatch.errors import RouteUnavailable
from server.dispatch.link import Link
from server.settings import Settings

log = structlog.get_logger("ticketd.gateway")
#: how long Ray may take to say where a route's actor listens (activation included: a
#: worker process start and the route's recovery)
_ADDRESS_SECONDS = 30.0


class Connector:
    """Opens and keeps each route's link to its actor."""

    def __init__(self, settings: Settings, directory: Directory) -> None:
        self.settings = settings
        self.directory = directory
        self._node_id: str | None = None

    async def handle(self, route_id: str) -> Any:
        """The route's actor handle (Ray activates the actor on its first call)."""
        handle = self.directory.cached(route_id)
        if handle is None:
            # a GCS round trip: keep it off the event loop
            handle = await asyncio.to_thread(self.directory.get, route_id)
        return handle

    async def link(self, ch: Channel) -> Link:
        """The route's open link, (re)connecting through Ray if there is none."""
        link = ch.link
        if link is not None and link.open:
            return link
        # one connection attempt per route however many requests wait for it; shielded, so
        # one waiter giving up does not cancel it for the others
        if ch.connecting is None or ch.connecting.done():
            ch.connecting = asyncio.create_task(self._connect(ch))
        return await asyncio.shield(ch.connecting)

    async def _connect(self, ch: Channel) -> Link:
        route_id = ch.route.route_id
        if ch.link is not None:
            ch.link.close()
            ch.link = None
        for attempt in (1, 2):
            handle = await self.handle(route_id)
            try:
                # Ray's control plane: activates the actor if needed, waits out a restart;
                # bounded, so a frozen node cannot hold this route's callers forever
                async with asyncio.timeout(_ADDRESS_SECONDS):
                    where = await handle.address.remote()
            except TimeoutError:
                log.warning("actor address lookup timed out", route_id=route_id)
                raise _down(ch) from None
            except rex.ActorUnavailableError:
                # unreachable (e.g. its node died) and Ray's own retries are used up
                raise _down(ch) from None
            except rex.ActorDiedError:
                # gone for good (idle deactivation, fenced): a fresh activation takes over
                self.directory.forget(route_id)
                if attempt == 2:
                    raise _down(ch) from None
                continue
            except rex.RayError as exc:
                log.warning("actor address lookup failed", route_id=route_id, error=repr(exc))
                raise _down(ch) from None
            try:
                link = await Link.connect(
                    where,
                    self.settings.cluster_secret,
                    unix=self._same_node(where),
                    timeout=self.settings.plane_connect_timeout,
                    request_timeout=self.settings.plane_request_timeout,
                    label=f"route {route_id}",
                )
            except protocol.AuthFailed as exc:
                log.error("data plane refused", route_id=route_id, error=str(exc))
                raise _down(ch) from None
            except (OSError, TimeoutError, protocol.PlaneError) as exc:
                # the activation that answered may have died since: ask Ray again
                log.warning("data plane connect failed", route_id=route_id, error=repr(exc))
                if attempt == 2:
                    raise _down(ch) from None
                continue
            metrics.PLANE_CONNECTS.inc()
            # the actor's first answer on a new connection carries every class: take it
            # whatever version we held
            ch.link, ch.version = link, -1
            return link
        raise RouteUnavailable(route_id)

    def _same_node(self, where: dict[str, Any]) -> bool:
        if self.settings.plane_transport == "tcp":
            return False
        if self._node_id is None:
            self._node_id = ray.get_runtime_context().get_node_id()
        return bool(where.get("node_id") == self._node_id)

    @staticmethod
    def close(ch: Channel) -> None:
        """Close the route's link and any connection attempt (shutdown)."""
        if ch.connecting is not None and not ch.connecting.done():
            ch.connecting.cancel()
        if ch.link is not None:
            ch.link.close()
            ch.link = None


def _down(ch: Channel) -> RouteUnavailable:
    """The route's actor does not answer: callers hear 503 until a call gets through."""
    ch.down = True
    return RouteUnavailable(ch.route.route_id)

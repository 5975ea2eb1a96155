"""The Starlette application: the HTTP contract (docs/architecture.md), assembled.

The endpoints are listed once in `server/contract.py` (their handlers live in server/api/,
one module per resource, and server/console/); this module makes the routes from that
table and runs the lifespan that starts the front end's services and stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable

import redis.asyncio as aredis
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from actors.config import ActorConfig
from actors.directory import Directory
from actors.storage import routes_store, topology
from actors.storage.persistence import check_persistence
from actors.storage.read_side import UserIndex
from server import console, contract
from server.api import endpoint, openapi, system
from server.api.auth import Authenticator
from server.api.hot import Ticketd
from server.api.middleware import RequestContext
from server.api.services import Services
from server.boot.runtime import Runtime
from server.catalog.finder import Search
from server.dispatch.gateway import Gateway
from server.settings import Settings
from server.waiting.room import WaitingRoom
from server.waiting.tokens import Signer

log = structlog.get_logger("ticketd.app")

#: Redis connections of one front end (route definitions, listing, readiness)
_REDIS_CONNECTIONS = 64

#: the Starlette routes of every endpoint of the contract, in its order (hot path first)
HTTP_ROUTES = endpoint.starlette_routes(contract.ENDPOINTS)


_SHUTDOWN_STEP_SECONDS = 5.0


async def _bounded(step: Awaitable[object], what: str) -> None:
    try:
        async with asyncio.timeout(_SHUTDOWN_STEP_SECONDS):
            await step
    except TimeoutError:
        log.warning("shutdown step timed out", step=what, seconds=_SHUTDOWN_STEP_SECONDS)


def redis_client(url: str) -> aredis.Redis:
    """The front end's Redis client: one blocking pool, closed with the client."""
    # a blocking pool: past max_connections a request waits for a free connection
    # (a rush on GET /v1/routes, say) where the default pool fails it with a 500
    # (a Redis Cluster's client: actors/storage/topology.py)
    return topology.async_client(url, _REDIS_CONNECTIONS, timeout=5, socket_timeout=10)


def create_app(settings: Settings, runtime: Runtime | None = None) -> Starlette:
    """The app; with no runtime given, the lifespan starts (and stops) its own."""
    settings = settings.with_secret()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        rt = runtime
        own = rt is None
        if rt is None:
            rt = Runtime(settings)
            rt.start()
        app.state.runtime = rt
        client = redis_client(rt.redis_url)
        try:
            if settings.redis_url and not rt.preflighted:
                warning = await check_persistence(client, settings.allow_volatile)
                if warning:
                    log.warning("redis durability", detail=warning)
            config = ActorConfig(
                redis_url=rt.redis_url,
                hold_seconds=settings.hold_seconds,
                user_cap=settings.user_cap,
                snapshot_every=settings.snapshot_every,
                idle_seconds=settings.idle_seconds,
                plane_secret=settings.cluster_secret,
                gc_freeze_seconds=settings.gc_freeze_seconds,
                redis_replicas=settings.redis_replicas,
                redis_nodes=topology.nodes_of(rt.redis_url),
            )
            gateway = Gateway(settings, client, Directory(config, settings.route_nodes))
            auth = Authenticator(settings.jwt_secret)
            finder = Search(client, rt.redis_url, gateway, settings.availability_refresh)
            # the lean connections speak to one server; a cluster's go through redis-py
            lean = None if topology.is_cluster(rt.redis_url) else rt.redis_url
            room = WaitingRoom(client, Signer(settings.cluster_secret), lean_url=lean)
            app.state.services = Services(
                settings, auth, gateway, client, finder, UserIndex(client), room
            )
            renamed = await routes_store.migrate_keys(client)
            if renamed:
                log.info("keys renamed to their hash tags", keys=renamed)
            indexed = await routes_store.ensure_indexed(client)
            if indexed:
                log.info("route indexes backfilled", routes=indexed)
            keeper = asyncio.create_task(gateway.keep_holds())
            waiting = asyncio.create_task(room.run())  # moves every sale on
            sampler = console.start(app)
            log.info("ticketd ready", host=settings.host, port=settings.port)
            try:
                yield
            finally:
                keeper.cancel()
                waiting.cancel()
                sampler.cancel()
                await _bounded(asyncio.wait({keeper, waiting, sampler}), "hold keeper stop")
                gateway.close_links()
                room.close()
        finally:
            # shutdown must end: a stuck step is logged and skipped, never waited out
            await _bounded(client.aclose(), "redis client close")
            if own:
                rt.stop()

    # the hot paths (bookings, queue joins and polls) answered ahead of every layer
    app = Ticketd(
        routes=HTTP_ROUTES,
        lifespan=lifespan,
        middleware=[RequestContext.middleware()],
        exception_handlers={HTTPException: system.http_error, Exception: system.server_error},
    )
    app.state.openapi = openapi.document()  # from the same table as HTTP_ROUTES
    return app

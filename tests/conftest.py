"""Shared fixtures: one real embedded Redis per test session, flushed for every test."""

from __future__ import annotations

import os
from pathlib import Path

# Ray reads RAY_AUTH_MODE when its core library loads, not at ray.init(): set it before
# anything imports ray. Token auth, as ticketd runs Ray locally (see README).
os.environ.setdefault("RAY_AUTH_MODE", "token")

import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis.asyncio

from actors.storage.redis_server import EmbeddedRedis
from actors.storage.valkey_cluster import LocalCluster, free_base_port


def pytest_configure(config: pytest.Config) -> None:
    """Console logs with plain tracebacks, as the server configures them."""
    from server.logs import configure

    configure(json=False)


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """The session's private Redis, with AOF on as in production."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own (AOF, appendfsync always), free to be killed and stopped."""
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def valkey_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """valkey_cluster(primaries=3, replicas=1, spares=0) -> a local Valkey Cluster
    (actors/storage/valkey_cluster.py), started; every one is stopped at the end."""
    started: list[LocalCluster] = []

    def start(primaries: int = 3, replicas: int = 1, spares: int = 0) -> LocalCluster:
        count = primaries * (1 + replicas) + spares
        made = LocalCluster(tmp_path / f"cluster{len(started)}", free_base_port(count),
                            primaries, replicas, spares)  # fmt: skip
        started.append(made)
        made.start()
        return made

    try:
        yield start
    finally:
        for made in started:
            made.stop()


@pytest.fixture(scope="session")
def redis_url(embedded_redis: EmbeddedRedis) -> str:
    """URL of the session's Redis."""
    return embedded_redis.url


@pytest_asyncio.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """An asyncio client on an empty database, closed after the test."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.flushall()
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """A real local Ray for the session (token auth on, as ticketd runs it)."""
    import ray

    ray.init(
        # always a Ray of this session's own: never one a `ray start` or another run left
        # on this machine (a plain ray.init() joins the cluster /tmp/ray names)
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def route_id_factory() -> Iterator[Callable[[], str]]:
    """Fresh route ids, unique per test run: detached actors outlive a test. One counter
    for the whole run (a random base per test once made two tests' ids collide: ~300
    tests drawing from a million). Trains stay 9 characters: tests add suffixes to them,
    and a train has at most 12."""

    def make() -> str:
        return f"T{_RUN_BASE:03d}{next(_ROUTE_COUNTER):05d}-20261201"

    yield make


#: a run's route ids: a random base (so two runs sharing a Ray differ) and a counter
_RUN_BASE = random.randrange(10**3)
_ROUTE_COUNTER = itertools.count()


# ---- the HTTP app over the session's Redis and Ray ---------------------------------------

JWT_SECRET = "test-secret-0123456789abcdef-0123456789"
#: the data-plane secret of the test apps and of the actors the actor tests create
PLANE_SECRET = "test-plane-secret-0123456789abcdef-0123"


@pytest_asyncio.fixture
async def app_factory(
    redis_url: str, ray_local: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Callable[..., Awaitable[httpx.AsyncClient]]]:
    """Build a running app (lifespan entered) with settings overrides; yields an HTTP client."""
    from contextlib import AsyncExitStack

    from server.app import create_app
    from server.boot.runtime import Runtime
    from server.settings import Settings

    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            settings = Settings(
                redis_url=redis_url,
                jwt_secret=JWT_SECRET,
                cluster_secret=PLANE_SECRET,
                data_dir=tmp_path_factory.mktemp("data"),
                **overrides,
            )
            app = create_app(settings, Runtime(settings))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://ticketd.test")
            await stack.enter_async_context(client)
            return client

        yield make


@pytest_asyncio.fixture
async def api(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
) -> httpx.AsyncClient:
    """A client of an app with default settings."""
    return await app_factory()


@pytest.fixture
def token() -> Callable[..., str]:
    """token(user, admin=False) -> a bearer header value signed with the test secret."""
    from server.api.auth import mint

    def make(user: str, admin: bool = False) -> str:
        return f"Bearer {mint(JWT_SECRET, user, admin)}"

    return make


@pytest.fixture
def jwt_secret() -> str:
    """The HS256 secret the test apps verify tokens with."""
    return JWT_SECRET

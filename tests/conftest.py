"""Shared fixtures: one real embedded Redis per test session, flushed for every test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis.asyncio

from actors.redis_server import EmbeddedRedis


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """The session's private Redis, with AOF on as in production."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-data"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


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

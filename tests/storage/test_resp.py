"""The lean Redis connection of the append path, against the real embedded Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from actors.storage import resp
from actors.storage.redis_server import EmbeddedRedis


def test_commands_are_packed_as_resp_bulk_strings() -> None:
    assert (
        resp.pack("SET", b"k", 5, 1.5) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n5\r\n$3\r\n1.5\r\n"
    )


def test_tls_urls_stay_on_redis_py() -> None:
    assert resp.supported("redis://127.0.0.1:6379/0") and resp.supported("unix:///tmp/r.sock")
    assert not resp.supported("rediss://example:6380/0")


async def test_replies_come_back_in_order_and_errors_as_redis_errors(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    conn = await resp.RespConnection.connect(redis_url)
    try:
        calls = [conn.call(resp.pack("INCR", "n")) for _ in range(50)]
        assert await asyncio.gather(*calls) == list(range(1, 51))
        assert await conn.call(resp.pack("SET", "s", b"\x00\xff")) == b"OK"
        assert await conn.call(resp.pack("GET", "s")) == b"\x00\xff"
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await conn.call(resp.pack("LPUSH", "s", "x"))
        assert await conn.call(resp.pack("GET", "missing")) is None
    finally:
        conn.close()


async def test_a_pipeline_gets_every_reply_in_one_future_between_single_calls(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    conn = await resp.RespConnection.connect(redis_url)
    try:
        before = conn.call(resp.pack("INCR", "n"))
        piped = conn.pipeline([resp.pack("INCR", "n") for _ in range(3)] + [resp.pack("GET", "x")])
        after = conn.call(resp.pack("INCR", "n"))
        assert (await before, await piped, await after) == (1, [2, 3, 4, None], 5)
        # one error reply fails the pipeline's future, after all its replies are read
        bad = conn.pipeline([resp.pack("SET", "s", "v"), resp.pack("LPUSH", "s", "x")])
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await bad
        assert await conn.call(resp.pack("GET", "s")) == b"v"
    finally:
        conn.close()


async def test_a_dead_server_fails_what_waits_and_refuses_new_calls(
    local_redis: EmbeddedRedis,
) -> None:
    conn = await resp.RespConnection.connect(local_redis.url)
    try:
        assert await conn.call(resp.pack("PING")) == b"PONG"
        blocked = conn.call(resp.pack("BLPOP", "never", 0))
        local_redis.stop()
        with pytest.raises(redis.ConnectionError):
            await asyncio.wait_for(blocked, 10)
        with pytest.raises(redis.ConnectionError):
            conn.call(resp.pack("PING"))
    finally:
        conn.close()
    with pytest.raises(redis.ConnectionError):
        await resp.RespConnection.connect(local_redis.url, timeout=2)


async def test_a_lean_link_opens_one_connection_for_callers_at_once_and_runs_forgotten_scripts(
    redis_url: str, redis_client: redis.asyncio.Redis
) -> None:
    link = resp.LeanLink(redis_url)
    opened = 0
    connect = resp.RespConnection.connect

    async def counting(url: str, timeout: float = 5.0) -> resp.RespConnection:
        nonlocal opened
        opened += 1
        await asyncio.sleep(0.01)  # a slow connect: the others ask meanwhile
        return await connect(url, timeout)

    resp.RespConnection.connect = counting  # type: ignore[method-assign]
    try:
        conns = await asyncio.gather(*(link.connection() for _ in range(10)))
    finally:
        resp.RespConnection.connect = connect  # type: ignore[method-assign]
    assert opened == 1 and len({id(c) for c in conns}) == 1
    script = "return ARGV[1]"
    sha = await redis_client.script_load(script)
    assert await link.evalsha(sha, script, [], ["x"]) == b"x"
    await redis_client.script_flush()  # a restarted Redis forgets its scripts
    assert await link.evalsha(sha, script, [], ["y"]) == b"y"
    link.close()

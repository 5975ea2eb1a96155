"""A lean Redis connection for the one command on a route actor's hot path.

Every batch a route actor writes is one EVALSHA of the fenced-append script.
Through redis-py's asyncio client that costs ~150 µs of CPU per call here (the
client, pool, retry and parser layers), against ~40 µs for a bare protocol
round trip: with batches of a handful of bookings, that difference is a large
share of a booking's cost. So the append goes over this: one connection,
commands packed as RESP by hand, replies parsed by hiredis (the parser
redis-py itself uses), several in flight in order.

Everything else (recovery, snapshots, TLS connections) stays on redis-py.
Failures are redis-py's exception types, so callers handle one family.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis
from redis.asyncio.connection import parse_url


def pack(*args: bytes | str | int | float) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, float):
            arg = repr(arg)
        elif isinstance(arg, int):
            arg = b"%d" % arg
        out.append(bulk(arg))
    return b"".join(out)


def bulk(arg: bytes | str) -> bytes:
    """One RESP bulk string."""
    raw = arg.encode() if isinstance(arg, str) else arg
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


def supported(url: str) -> bool:
    """Whether this client can talk to url (redis:// and unix://; TLS stays on redis-py)."""
    return url.startswith(("redis://", "unix://"))


class RespConnection(asyncio.Protocol):
    """One connection; `call` sends a packed command and awaits its reply in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: deque[asyncio.Future[Any] | _Gather] = deque()
        self._transport: asyncio.Transport | None = None
        self.open = False

    @classmethod
    async def connect(cls, url: str, timeout: float = 5.0) -> RespConnection:
        """Connect, authenticate and select the database the URL names."""
        opts = parse_url(url)
        loop = asyncio.get_running_loop()
        conn = cls()
        async with asyncio.timeout(timeout):
            try:
                if "path" in opts:
                    await loop.create_unix_connection(lambda: conn, opts["path"])
                else:
                    await loop.create_connection(
                        lambda: conn, opts.get("host", "localhost"), opts.get("port", 6379)
                    )
            except OSError as exc:
                raise redis.ConnectionError(f"cannot connect to Redis: {exc}") from exc
            try:
                if opts.get("password"):
                    user = opts.get("username")
                    auth = ("AUTH", user, opts["password"]) if user else ("AUTH", opts["password"])
                    await conn.call(pack(*auth))
                if opts.get("db"):
                    await conn.call(pack("SELECT", int(opts["db"])))
            except BaseException:
                conn.close()
                raise
        return conn

    def call(self, packed: bytes) -> asyncio.Future[Any]:
        """Send one packed command; the future gets its reply (or a redis error)."""
        if not self.open or self._transport is None:
            raise redis.ConnectionError("the Redis connection is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._transport.write(packed)
        return future

    def pipeline(self, packed: list[bytes]) -> asyncio.Future[list[Any]]:
        """Send several packed commands in one write; the future gets every reply, in
        order (or the first error reply, raised)."""
        if not self.open or self._transport is None:
            raise redis.ConnectionError("the Redis connection is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Gather(future, len(packed)))
        self._transport.write(b"".join(packed))
        return future

    def close(self) -> None:
        """Close; commands still waiting fail with ConnectionError."""
        self.open = False
        if self._transport is not None:
            self._transport.abort()

    # ---- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.open = True

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        while self._waiting:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail_all(redis.ConnectionError(f"Redis protocol error: {exc}"))
                self.close()
                return
            if reply is False:
                return
            future = self._waiting[0]
            if isinstance(future, _Gather):
                if future.take(reply):  # the pipeline's last reply
                    self._waiting.popleft()
                continue
            self._waiting.popleft()
            if future.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(redis.ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail_all(redis.ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def _fail_all(self, exc: Exception) -> None:
        waiting, self._waiting = self._waiting, deque()
        for waiter in waiting:
            future = waiter.future if isinstance(waiter, _Gather) else waiter
            if not future.done():
                future.set_exception(exc)


class LeanLink:
    """One RespConnection to `url`, opened when first needed and again after it broke.
    Callers at once share one: a lock, not a race that opens several and leaks all but
    the last."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: RespConnection | None = None
        self._connecting = asyncio.Lock()

    async def connection(self) -> RespConnection:
        conn = self._conn
        if conn is not None and conn.open:
            return conn  # the common case takes no lock
        async with self._connecting:
            conn = self._conn
            if conn is None or not conn.open:
                conn = self._conn = await RespConnection.connect(self.url)
            return conn

    async def evalsha(
        self, sha: str, script: str, keys: Sequence[str], args: Sequence[bytes | str | int]
    ) -> Any:
        """Run a script by its sha, or by its text if the server forgot it (a restarted or
        flushed Redis: EVALSHA did not run it)."""
        conn = await self.connection()
        try:
            return await conn.call(pack("EVALSHA", sha, len(keys), *keys, *args))
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await conn.call(pack("EVAL", script, len(keys), *keys, *args))

    async def evalsha_all(self, sha: str, script: str, keys: Sequence[str],
                          args: Sequence[bytes | str | int], after: Sequence[bytes]
                          ) -> list[Any]:  # fmt: skip
        """`evalsha`, then the packed commands `after` (a WAITAOF, say) on the same
        connection in the same write; every reply."""
        conn = await self.connection()
        try:
            return await conn.pipeline([pack("EVALSHA", sha, len(keys), *keys, *args), *after])
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await conn.pipeline([pack("EVAL", script, len(keys), *keys, *args), *after])

    def close(self) -> None:
        """Close the connection; the next call opens another."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Gather:
    """The replies of one pipeline, gathered for one future."""

    __slots__ = ("future", "left", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future, self.left = future, count
        self.replies: list[Any] = []

    def take(self, reply: Any) -> bool:
        """Add a reply; True once the last one came (the future is then settled)."""
        self.replies.append(reply)
        self.left -= 1
        if self.left:
            return False
        if not self.future.done():
            error = next((r for r in self.replies if isinstance(r, hiredis.ReplyError)), None)
            if error is not None:
                self.future.set_exception(redis.ResponseError(str(error)))
            else:
                self.future.set_result(self.replies)
        return True

"""The front end's side of the data plane: one authenticated connection to one route actor.

See `actors/protocol.py` for the protocol. A Link multiplexes requests by id, so
several batches may be in flight on it. When the connection ends, or the
oldest request waits longer than `request_timeout` (a frozen actor keeps its
socket open), every request in flight fails with LinkLost: its fate is
unknown, and the caller answers 503 (safe to retry with the same key).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Mapping
from typing import Any, cast

from actors.plane import protocol

_WATCH_SECONDS = 0.5
_ID_LIMIT = 2**32


class Link(asyncio.Protocol):
    """One connection to a route actor's data plane."""

    def __init__(self, secret: bytes, request_timeout: float, label: str = "") -> None:
        self.label = label
        self.request_timeout = request_timeout
        self.open = False
        self._secret = secret
        self._nonce = protocol.nonce()
        self._server_nonce = b""
        self._stage = 0  # 0: await hello, 1: await the server's proof, 2: frames
        self._buf = bytearray()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self._pending: dict[int, tuple[asyncio.Future[bytes], float]] = {}
        self._next_id = 0
        self._watch: asyncio.TimerHandle | None = None
        self._why = "the connection closed"

    @classmethod
    async def connect(
        cls,
        where: Mapping[str, Any],
        secret: str,
        *,
        unix: bool,
        timeout: float = 2.0,
        request_timeout: float = 5.0,
        label: str = "",
    ) -> Link:
        """Connect and authenticate (AuthFailed, OSError or TimeoutError otherwise).

        `where` is the actor's `address()` answer; `unix` picks its same-node socket.
        """
        key = protocol.secret_bytes(secret)
        loop = asyncio.get_running_loop()
        link = cls(key, request_timeout, label)
        try:
            async with asyncio.timeout(timeout):
                if unix and where.get("unix"):
                    # connect the socket ourselves: uvloop cannot connect to a Linux
                    # abstract socket name, but takes the connected socket
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        sock.setblocking(False)
                        await loop.sock_connect(sock, where["unix"])
                    except BaseException:
                        sock.close()
                        raise
                    await loop.create_unix_connection(lambda: link, sock=sock)
                else:
                    await loop.create_connection(lambda: link, where["host"], where["port"])
                await link._ready
        except BaseException:
            link.close()
            raise
        return link

    # ---- requests -----------------------------------------------------------------------

    def request(self, op: int, body: bytes = b"") -> asyncio.Future[bytes]:
        """Send one request; the future gets the answer's body (or a PlaneError)."""
        if not self.open or self._transport is None:
            raise protocol.LinkLost(f"{self.label}: {self._why}")
        self._next_id = (self._next_id + 1) % _ID_LIMIT
        req_id = self._next_id
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._pending[req_id] = (future, time.monotonic())
        self._transport.write(protocol.frame(req_id, op, body))
        return future

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def close(self) -> None:
        """Close the connection; requests in flight fail with LinkLost."""
        self._why = "the link was closed"
        if self._transport is not None:
            self._transport.close()
        self.open = False

    # ---- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._watch is not None:
            self._watch.cancel()
        if not self._ready.done():
            if self._stage == 1:
                # we sent our proof and the actor hung up: it did not accept the secret
                self._ready.set_exception(
                    protocol.AuthFailed(
                        f"{self.label}: the actor refused the connection; is "
                        "TICKETD_CLUSTER_SECRET the same on every node?"
                    )
                )
            else:
                self._ready.set_exception(
                    protocol.LinkLost(f"{self.label}: closed while connecting")
                )
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(protocol.LinkLost(f"{self.label}: {self._why}"))

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if self._stage < 2 and not self._handshake():
            return
        try:
            frames = protocol.split_frames(buf)
        except protocol.PlaneError as exc:
            self._abort(f"protocol violation ({exc})")
            return
        pending = self._pending
        for req_id, status, body in frames:
            entry = pending.pop(req_id, None)
            if entry is None or entry[0].done():
                continue
            if status == protocol.OK:
                entry[0].set_result(body)
            elif status == protocol.GONE:
                entry[0].set_exception(protocol.Gone(f"{self.label}: the activation is ending"))
            else:
                entry[0].set_exception(protocol.RemoteError(body.decode(errors="replace")))

    # ---- internals ------------------------------------------------------------------------

    def _handshake(self) -> bool:
        """Advance the handshake with what is buffered; True once frames may follow."""
        buf = self._buf
        if self._stage == 0:
            if len(buf) < protocol.HELLO_SIZE:
                return False
            if bytes(buf[: len(protocol.MAGIC)]) != protocol.MAGIC:
                self._fail_handshake(protocol.AuthFailed(f"{self.label}: not a ticketd data plane"))
                return False
            self._server_nonce = bytes(buf[len(protocol.MAGIC) : protocol.HELLO_SIZE])
            del buf[: protocol.HELLO_SIZE]
            proof = protocol.client_proof(self._secret, self._server_nonce, self._nonce)
            assert self._transport is not None
            self._transport.write(self._nonce + proof)
            self._stage = 1
        if len(buf) < protocol.MAC:
            return False
        expected = protocol.server_proof(self._secret, self._server_nonce, self._nonce)
        if not protocol.verify(expected, bytes(buf[: protocol.MAC])):
            self._fail_handshake(
                protocol.AuthFailed(f"{self.label}: the actor could not prove the cluster secret")
            )
            return False
        del buf[: protocol.MAC]
        self._stage = 2
        self.open = True
        self._ready.set_result(None)
        self._watch = self._loop.call_later(_WATCH_SECONDS, self._check_stall)
        return True

    def _fail_handshake(self, exc: Exception) -> None:
        if not self._ready.done():
            self._ready.set_exception(exc)
        self._abort("handshake failed")

    def _check_stall(self) -> None:
        """Cut a connection whose oldest request has waited too long (a frozen actor)."""
        if not self.open:
            return
        if self._pending:
            _, sent = next(iter(self._pending.values()))
            if time.monotonic() - sent > self.request_timeout:
                self._abort(f"no answer within {self.request_timeout:g} s")
                return
        self._watch = self._loop.call_later(_WATCH_SECONDS, self._check_stall)

    def _abort(self, why: str) -> None:
        self._why = why
        self.open = False
        if self._transport is not None:
            self._transport.abort()

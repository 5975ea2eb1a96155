"""The route actor's side of the data plane: it listens and answers on its own event loop.

The server runs inside the actor's asyncio loop (the loop Ray runs async actor
methods on), so a frame's commands join the actor's pending batch exactly as a
method call would, with no thread hop and no Ray task per request.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from dataclasses import dataclass
from typing import Protocol, cast

import structlog

from actors.domain.messages import Command, decode_commands, encode
from actors.domain.views import Reply, Result
from actors.plane import protocol

log = structlog.get_logger("ticketd.plane")

#: (generation, inventory version) of a class's availability row, and the row
Rows = dict[str, tuple[tuple[int, int], list[int]]]


class Host(Protocol):
    """What the plane needs of its actor."""

    def plane_submit(self, commands: list[Command], conn: Connection, req_id: int) -> None: ...

    def plane_availability(self, conn: Connection, req_id: int) -> None: ...

    def plane_seats(self, conn: Connection, req_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Address:
    """Where an actor's plane listens: TCP on the node's address, and a same-node socket."""

    host: str
    port: int
    #: Linux abstract Unix socket name (no file to clean up), or "" elsewhere
    unix: str


class Connection(asyncio.Protocol):
    """One front end's connection: handshake first, then frames."""

    def __init__(self, host: Host, secret: bytes, route_id: str, registry: set[Connection]) -> None:
        self.host = host
        self._registry = registry
        self.secret = secret
        self.route_id = route_id
        self.transport: asyncio.Transport | None = None
        self.open = False
        self._authed = False
        self._buf = bytearray()
        self._nonce = protocol.nonce()
        self._deadline: asyncio.TimerHandle | None = None
        #: availability rows this front end already has: replies carry only what changed
        self.sent: dict[str, tuple[int, int]] = {}

    # ---- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)
        self.open = True
        self._registry.add(self)
        self.transport.write(protocol.MAGIC + self._nonce)
        self._deadline = asyncio.get_running_loop().call_later(
            protocol.HANDSHAKE_SECONDS, self._handshake_timeout
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._registry.discard(self)
        if self._deadline is not None:
            self._deadline.cancel()

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._authed:
            if len(buf) < protocol.PROOF_SIZE:
                return
            if not self._check_proof(bytes(buf[: protocol.PROOF_SIZE])):
                return
            del buf[: protocol.PROOF_SIZE]
        try:
            frames = protocol.split_frames(buf)
        except protocol.PlaneError as exc:
            log.warning("plane: protocol violation", route_id=self.route_id, error=str(exc))
            self._cut()
            return
        for req_id, op, body in frames:
            self._dispatch(req_id, op, body)

    # ---- answers --------------------------------------------------------------------

    def reply(self, req_id: int, results: list[Result], version: int, rows: Rows) -> None:
        """Answer a request with its results and the availability rows this peer lacks."""
        if not self.open:
            return
        sent = self.sent
        delta: dict[str, list[int]] = {}
        for klass, (tag, row) in rows.items():
            if sent.get(klass) != tag:
                delta[klass] = row
                sent[klass] = tag
        assert self.transport is not None
        self.transport.write(
            protocol.frame(req_id, protocol.OK, encode(Reply(results, version, delta)))
        )

    def answer(self, req_id: int, body: bytes) -> None:
        """Answer a request with an already encoded body."""
        if self.open and self.transport is not None:
            self.transport.write(protocol.frame(req_id, protocol.OK, body))

    def gone(self, req_id: int) -> None:
        """Answer that this activation is ending and did not run the request."""
        if self.open and self.transport is not None:
            self.transport.write(protocol.frame(req_id, protocol.GONE, b""))

    def fail(self, req_id: int, detail: str) -> None:
        """Answer a request with the sentence saying why it could not run."""
        if self.open and self.transport is not None:
            self.transport.write(protocol.frame(req_id, protocol.ERROR, detail.encode()))

    # ---- internals --------------------------------------------------------------------

    def _check_proof(self, proof: bytes) -> bool:
        client_nonce, mac = proof[: protocol.NONCE], proof[protocol.NONCE :]
        if not protocol.verify(protocol.client_proof(self.secret, self._nonce, client_nonce), mac):
            log.warning("plane: connection refused, wrong cluster secret", route_id=self.route_id)
            self._cut()
            return False
        self._authed = True
        if self._deadline is not None:
            self._deadline.cancel()
        assert self.transport is not None
        self.transport.write(protocol.server_proof(self.secret, self._nonce, client_nonce))
        return True

    def _dispatch(self, req_id: int, op: int, body: bytes) -> None:
        if op == protocol.OP_SUBMIT:
            try:
                commands = decode_commands(body)
            except Exception as exc:  # a peer that knows the secret but speaks nonsense
                self.fail(req_id, f"The commands could not be decoded: {exc}")
                return
            self.host.plane_submit(commands, self, req_id)
        elif op == protocol.OP_AVAILABILITY:
            self.host.plane_availability(self, req_id)
        elif op == protocol.OP_SEATS:
            self.host.plane_seats(self, req_id)
        else:
            self.fail(req_id, f"Unknown operation {op}.")

    def _handshake_timeout(self) -> None:
        if not self._authed:
            log.warning("plane: connection refused, no handshake", route_id=self.route_id)
            self._cut()

    def _cut(self) -> None:
        self.open = False
        self._buf.clear()
        if self.transport is not None:
            self.transport.abort()


class PlaneServer:
    """The listening sockets of one actor."""

    def __init__(
        self, servers: list[asyncio.Server], address: Address, connections: set[Connection]
    ) -> None:
        self._servers = servers
        self.address = address
        self._connections = connections

    @classmethod
    async def start(cls, host: Host, secret: str, bind: str, route_id: str) -> PlaneServer:
        """Listen on TCP `bind` (an ephemeral port) and, on Linux, an abstract Unix socket."""
        key = protocol.secret_bytes(secret)
        loop = asyncio.get_running_loop()
        connections: set[Connection] = set()

        def factory() -> Connection:
            return Connection(host, key, route_id, connections)

        tcp = await loop.create_server(factory, bind, 0)
        servers = [tcp]
        port = tcp.sockets[0].getsockname()[1]
        unix = ""
        if sys.platform == "linux":
            name = f"\0ticketd-plane-{secrets.token_hex(8)}"
            servers.append(await loop.create_unix_server(factory, name))
            unix = name
        return cls(servers, Address(bind, port, unix), connections)

    def close(self) -> None:
        """Stop listening and close every connection once its answers are written, so
        front ends learn at once that they must look the route up again."""
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            conn.open = False
            if conn.transport is not None:
                conn.transport.close()

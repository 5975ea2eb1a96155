"""uvicorn's httptools protocol with each response sent in one socket write.

uvicorn writes a response's status line and headers when the app sends
`http.response.start`, and the body in a second `transport.write` when it sends
`http.response.body`: two send() syscalls (and two TCP segments) for every answer,
about a fifth of the front end's time when the answers are cheap (a sold-out rush).
Here every write of one event-loop turn goes out as one: the first write of a turn
is held, later ones join it, and the lot is written when the turn ends (a callback
scheduled with call_soon runs before the loop next polls its sockets, so nothing
read later can overtake it). Closing writes out what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class CorkedTransport:
    """A transport whose writes of one loop turn become one write on the real one."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        """Hold data until this loop turn ends (joined with the turn's other writes)."""
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(data)

    def flush(self) -> None:
        """Write out what is held, as one write."""
        held = self._held
        if not held:
            return
        self._held = []
        if self._transport.is_closing():
            return  # the peer is gone: what it would have read is lost either way
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # everything else (flow control, extra info) is the real transport's
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a CorkedTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked = CorkedTransport(transport, self.loop)
        super().connection_made(corked)  # type: ignore[arg-type]

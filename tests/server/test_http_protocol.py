"""One socket write per response (server/boot/http.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from server.boot.http import CorkedTransport


class Recorder:
    """A transport that records what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_the_writes_of_one_loop_turn_reach_the_socket_as_one() -> None:
    real = Recorder()
    corked = CorkedTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n")
    corked.write(b"{}")
    assert real.writes == []  # held until the turn ends
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 409 Conflict\r\ncontent-length: 2\r\n\r\n{}"]
    corked.write(b"next")
    await asyncio.sleep(0)
    assert real.writes[-1] == b"next"
    # everything else is the real transport's
    assert corked.get_extra_info("peername") == ("127.0.0.1", 1)


async def test_closing_writes_out_what_is_held_and_aborting_drops_it() -> None:
    real = Recorder()
    corked = CorkedTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"last answer")
    corked.close()
    assert real.writes == [b"last answer"] and real.closed
    other = Recorder()
    corked = CorkedTransport(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    corked.write(b"never sent")
    corked.abort()
    await asyncio.sleep(0)
    assert other.writes == [] and other.aborted

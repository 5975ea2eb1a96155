"""The route actor's seat-map read (plane op OP_SEATS), for the web console.

A seat-map read must show what Redis holds: while a batch is decided and applied in
memory but its append is not confirmed yet, readers wait; the map is taken when the
next batch is sent (memory is then the journal plus that batch) and handed out once
that batch is confirmed, or at once when nothing is being written. One encoding per
actor version serves every reader; the read is never on the booking path.
"""

from __future__ import annotations

from actors.domain.messages import encode
from actors.domain.state import RouteState
from actors.domain.views import seat_map
from actors.plane.listener import Connection


class SeatReads:
    """Seat-map readers waiting for the next durable moment, and the last answer."""

    def __init__(self) -> None:
        self.waiting: list[tuple[Connection, int]] = []
        self._memo: tuple[int, bytes] = (-1, b"")

    def ask(self, conn: Connection, req_id: int) -> None:
        """Queue a reader; the actor calls `answer` when memory is what Redis holds."""
        self.waiting.append((conn, req_id))

    def answer(self, state: RouteState, version: int, stale: bool) -> None:
        """Answer every waiting reader (a stale state is being reloaded: they retry)."""
        if not self.waiting:
            return
        readers, self.waiting = self.waiting, []
        if stale:
            for conn, req_id in readers:
                conn.fail(req_id, "The route is reloading its state; retry.")
            return
        body = self.encode(state, version)
        for conn, req_id in readers:
            conn.answer(req_id, body)

    def take(self, state: RouteState, version: int) -> tuple[list[tuple[Connection, int]], bytes]:
        """The waiting readers and their answer, as of a batch being sent (handed out by
        `hand_out` once it is confirmed)."""
        readers, self.waiting = self.waiting, []
        return readers, self.encode(state, version)

    @staticmethod
    def hand_out(readers: list[tuple[Connection, int]], body: bytes, stale: bool) -> None:
        """Answer readers whose seat map was taken when a batch was sent, once it is
        confirmed (or tell them to retry if it was not)."""
        for conn, req_id in readers:
            if stale:
                conn.fail(req_id, "The route is reloading its state; retry.")
            else:
                conn.answer(req_id, body)

    def encode(self, state: RouteState, version: int) -> bytes:
        """The seat map of a state at a version, encoded once per version."""
        at, body = self._memo
        if at != version:
            body = encode(seat_map(state, version))
            self._memo = (version, body)
        return body

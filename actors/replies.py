"""Where a route actor's answers go: each request's sink, and the refusal of a whole batch."""

from __future__ import annotations

import asyncio

from actors.domain.errors import Unavailable
from actors.domain.messages import Command, encode
from actors.domain.views import Reply, Result
from actors.plane.listener import Connection, Rows

#: where a request's answer goes: a future (internal sweeps, Ray `sweep`) or a plane
#: connection and the request's id on it
Sink = asyncio.Future[bytes] | tuple[Connection, int]

#: what a refused batch tells its callers (503 `unavailable`: retry with the same key)
MOVED = "This route moved to a newer activation; retry."
NO_STORAGE = "Storage is unreachable; retry with the same key."
UNCONFIRMED = "Storage did not confirm; retry with the same key."
CLASHED = "A retry of a booking in this batch was answered meanwhile; retry."


def deliver(
    batch: list[tuple[list[Command], Sink]],
    answers: list[list[Result]],
    version: int,
    durable: Rows,
) -> None:
    """Each request's results to where it waits: a future, or its plane connection."""
    full = None
    for (_, sink), results in zip(batch, answers, strict=True):
        if isinstance(sink, asyncio.Future):
            if not sink.done():
                if full is None:
                    full = {k: row for k, (_, row) in durable.items()}
                sink.set_result(encode(Reply(results, version, full)))
        else:
            conn, req_id = sink
            conn.reply(req_id, results, version, durable)


def fail(batch: list[tuple[list[Command], Sink]], exc: Exception) -> None:
    for _, sink in batch:
        if isinstance(sink, asyncio.Future):
            if not sink.done():
                sink.set_exception(exc)
        else:
            conn, req_id = sink
            conn.fail(req_id, f"{type(exc).__name__}: {exc}")


def unavailable(route_id: str, sizes: list[int], detail: str) -> list[list[Result]]:
    """A batch refused whole: every request answers 503 `unavailable` with detail."""
    err = Result(False, error=Unavailable(detail, route_id=route_id).to_dict())
    return [[err] * size for size in sizes]

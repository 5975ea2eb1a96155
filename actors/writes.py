"""A route actor's batches on their way to Redis: decided, then written, then answered.

One append is in flight at a time, so the journal's order is the order of decisions and
a failed append can never be followed by one that assumed it. While it is in flight,
requests that arrive are decided at once, on top of it, into the next batch (`Ahead`):
the actor's CPU works while Redis writes, instead of each waiting for the other. That
next batch is sent the moment the one in flight is confirmed; if that one fails
instead, the batch decided on top of it was never sent, and all of it answers
"unavailable" while memory is rebuilt from Redis.

Everything a reply or a reader must see "as Redis holds it" is taken when a batch is
sent, when memory is exactly the journal plus that batch (nothing decided beyond it
yet): the availability rows its replies carry, the seat map for the readers waiting,
the snapshot if one is due. It is handed out only once the append is confirmed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import redis
import structlog

from actors.domain.messages import Command, Event, Sweep
from actors.domain.state import RouteState
from actors.domain.views import Result
from actors.plane.listener import Connection, Rows
from actors.replies import CLASHED, MOVED, UNCONFIRMED, Sink
from actors.storage import journal

Batch = list[tuple[list[Command], Sink]]

log = structlog.get_logger("ticketd.actor")


@dataclass(slots=True)
class Ahead:
    """Requests decided and applied in memory, not sent to Redis yet."""

    batch: Batch = field(default_factory=list)
    #: each request's results, in batch order
    answers: list[list[Result]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class Write:
    """A batch whose append is in flight (or needs none: no events)."""

    ahead: Ahead
    #: the append (the entry id), None when the batch journals nothing
    append: asyncio.Task[str] | None
    #: availability rows after this batch, for its replies and the actor's next answers
    rows: Rows
    #: the state encoded right after this batch, if a snapshot is due
    snapshot: bytes | None = None
    #: seat-map readers to answer once the batch is confirmed, and the answer
    readers: list[tuple[Connection, int]] = field(default_factory=list)
    seat_map: bytes = b""
    sent_at: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why an append did not land, for its batch's "unavailable" answers."""

    detail: str
    fenced: bool = False


async def append_within(seconds: float, writer: journal.Journal, batch: journal.BatchWrite
                        ) -> str:  # fmt: skip
    """One journal append, given up after `seconds` (then it may or may not have landed)."""
    async with asyncio.timeout(seconds):
        return await writer.write(batch)


async def landed(append: asyncio.Task[str], route_id: str, epoch: int) -> str | Refused:
    """The append's entry id, or why it did not land (logged)."""
    try:
        return await append
    except journal.Fenced:
        log.warning("route actor fenced", route_id=route_id, epoch=epoch)
        return Refused(MOVED, fenced=True)
    except journal.KeyClash:
        # nothing was journalled: both the cached answer and this one say "not booked"
        log.info("batch refused: a key was answered from a cache", route_id=route_id)
        return Refused(CLASHED)
    except (redis.RedisError, OSError, TimeoutError) as exc:
        # it may or may not have landed: memory is rebuilt from Redis before the next
        # batch, so it never disagrees with the journal
        log.warning("journal append failed", route_id=route_id, error=repr(exc))
        return Refused(UNCONFIRMED)


def commands_of(batch: Batch) -> list[Command]:
    """A batch's commands, after the Sweep every batch starts with (expire due holds)."""
    commands: list[Command] = [Sweep()]
    for cmds, _ in batch:
        commands.extend(cmds)
    return commands


def split(results: list[Result], batch: Batch) -> list[list[Result]]:
    """Each request's results (results[0] answers the internal Sweep)."""
    out: list[list[Result]] = []
    at = 1
    for cmds, _ in batch:
        out.append(results[at : at + len(cmds)])
        at += len(cmds)
    return out


def rows_of(state: RouteState, generation: int, held: Rows) -> Rows:
    """The availability rows of a state, tagged (generation, inventory version) so a
    connection can tell news; classes unchanged since `held` keep their row objects."""
    inv = state.inv
    rows: Rows = {}
    for klass in inv.classes:
        tag = (generation, inv.version[klass])
        had = held.get(klass)
        rows[klass] = had if had is not None and had[0] == tag else (tag, inv.matrix(klass))
    return rows

"""How far admission has reached, and what a poll of the queue answers.

Admission moves a *frontier*: everyone whose place is at or below it may book. It moves
either at a fixed rate of users per second, or automatically: as fast as the routes sell,
never leaving more admitted people who have not booked yet than seats left × a factor
(12306's "more people queued than tickets left" stop, as a rule). A poll is answered
from the caller's place and the frontier alone, so a front end answers it from memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: a sale's states (the contract's sale `state`)
SCHEDULED, OPEN, PAUSED, SOLD_OUT, CLOSED = "scheduled", "open", "paused", "sold-out", "closed"
#: what a poll answers besides the sale's end states (the contract's queue `state`)
NOT_OPEN, WAITING, ADMITTED = "not-open", "waiting", "admitted"
#: bounds of the advised time between polls (s): often enough to see the line move,
#: rarely enough that a crowd of pollers costs the front ends little
POLL_MIN, POLL_MAX = 1.0, 30.0


@dataclass(frozen=True, slots=True)
class FixedRate:
    """Admit `per_second` users a second."""

    per_second: float


@dataclass(frozen=True, slots=True)
class Automatic:
    """Admit as seats allow: admitted-but-not-booked ≤ seats left × `factor`."""

    factor: float = 1.5


Policy = FixedRate | Automatic


@dataclass(frozen=True, slots=True)
class Step:
    """One move of the frontier."""

    frontier: int
    #: the fraction of a user the fixed rate owes to the next step
    carry: float


def advance(
    policy: Policy, frontier: int, queued: int, *, elapsed: float, carry: float = 0.0,
    seats_left: int, unbooked: int,
) -> Step:  # fmt: skip
    """The frontier after `elapsed` seconds: never past the queue's end (`queued`), never
    while no seat is left. `unbooked`: admitted people who neither booked nor expired."""
    room = queued - frontier
    if room <= 0 or seats_left <= 0:
        return Step(frontier, 0.0)
    if isinstance(policy, FixedRate):
        owed = policy.per_second * max(elapsed, 0.0) + carry
        whole = min(int(owed), room)
        return Step(frontier + whole, owed - whole if whole < room else 0.0)
    cap = math.ceil(seats_left * policy.factor) - unbooked
    return Step(frontier + max(0, min(cap, room)), 0.0)


@dataclass(frozen=True, slots=True)
class QueueView:
    """What a poll answers (the contract's fields; None where the state has none)."""

    state: str
    place: int | None
    ahead: int | None
    eta_seconds: float | None
    poll_after_seconds: float


def view(sale_state: str, place: int | None, frontier: int, rate: float) -> QueueView:
    """A caller's view of the sale in `sale_state`: `place` is theirs (None in the
    pre-queue), `rate` the admissions per second lately (0 while paused)."""
    if sale_state in (SOLD_OUT, CLOSED):
        return QueueView(sale_state, place, None, None, POLL_MAX)
    if sale_state == SCHEDULED or place is None:
        return QueueView(NOT_OPEN, None, None, None, POLL_MIN)
    if place <= frontier:
        return QueueView(ADMITTED, place, 0, 0.0, POLL_MAX)
    ahead = place - frontier - 1
    if rate <= 0:  # paused, or nothing admitted lately: no estimate to give
        return QueueView(WAITING, place, ahead, None, POLL_MAX / 2)
    eta = (ahead + 1) / rate
    # a quarter of the wait, within bounds: the line is seen to move, and polls thin out
    # for those far back, where most of a crowd is
    poll = min(POLL_MAX, max(POLL_MIN, eta / 4))
    return QueueView(WAITING, place, ahead, round(eta, 1), poll)

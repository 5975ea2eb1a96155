"""What loadgen sent and what the server acknowledged: the client half of the audit's input.

Every write is filed under one of three outcomes, as in Jepsen: acknowledged (a 2xx reply),
rejected (an error reply the contract defines as "not applied") or indeterminate (no reply, or
one that does not say: the server may or may not have applied it, at most once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from loadgen.wire import Booking, BookingRequest, RouteDef


class Outcome(StrEnum):
    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True, slots=True)
class BookAttempt:
    """One booking request (one idempotency key) and how it ended."""

    key: str
    route_id: str
    user: str
    request: BookingRequest
    outcome: Outcome
    booking: Booking | None = None
    """The acknowledged reply (`held` with seats, or `waitlisted` without)."""

    @property
    def passenger_ids(self) -> tuple[str, ...]:
        """The passengers' ids in request order; loadgen never reuses one within a run."""
        return tuple(p.id for p in self.request.passengers)


@dataclass(frozen=True, slots=True)
class Action:
    """A later confirm or cancel loadgen sent for one of its acknowledged bookings."""

    booking_id: str
    kind: Literal["confirm", "cancel"]
    outcome: Outcome
    booking: Booking | None = None


@dataclass(slots=True)
class Ledger:
    """Append-only record of one run's routes and writes."""

    routes: dict[str, RouteDef] = field(default_factory=dict)
    attempts: list[BookAttempt] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        """Booking requests that got a 2xx reply with a booking id."""
        return sum(1 for a in self.attempts if a.outcome is Outcome.ACKNOWLEDGED)

    @property
    def indeterminate(self) -> int:
        """Writes (bookings, confirms, cancels) whose fate loadgen never learned."""
        return sum(1 for a in self.attempts if a.outcome is Outcome.INDETERMINATE) + sum(
            1 for a in self.actions if a.outcome is Outcome.INDETERMINATE
        )

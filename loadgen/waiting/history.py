"""What a waiting-room run saw: every request of every user with its answer, timed on the
client's clock. The audit reads nothing else of the load phase (besides the booking ledger).

Times are `loop.time()` seconds; `opens_at` is the sale's opening on the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """Who a user is."""

    EARLY = "early"
    """Joins before the opening, then polls as advised and books once admitted."""
    LATE = "late"
    """The same, joining after the opening."""
    TIGHT = "tight-poller"
    """A bot: joins, then polls (and joins again) in a tight loop, deaf to advice."""
    SKIP = "queue-skipper"
    """A bot: never queues, books with no admission, a forged one or someone else's."""


BOTS = frozenset({Kind.TIGHT, Kind.SKIP})


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer. `status` None: no HTTP answer came (timeout, reset)."""

    user: str
    op: str
    """`join`, `poll`, `book` or `confirm`."""
    sent: float
    received: float
    status: int | None
    state: str | None = None
    """A queue answer's state."""
    place: int | None = None
    advice: float | None = None
    """A queue answer's poll_after_seconds, or a 429's Retry-After."""
    admission: str | None = None
    """The token of an `admitted` answer (a sold-out answer's waitlist token is not kept)."""
    slug: str | None = None
    """An error answer's problem type."""
    carried: str | None = None
    """A booking: the Admission header it carried (None: none)."""


@dataclass(frozen=True, slots=True)
class Sample:
    """The sale as GET /v1/sales/{id} showed it at `t`."""

    t: float
    state: str
    joined: int
    admitted: int


@dataclass(slots=True)
class History:
    """Append-only record of one waiting-room run."""

    opens_at: float
    kinds: dict[str, Kind] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def by_user(self) -> dict[str, list[Exchange]]:
        """Each user's exchanges in the order they were sent."""
        mine: dict[str, list[Exchange]] = {user: [] for user in self.kinds}
        for x in sorted(self.exchanges, key=lambda x: x.sent):
            mine.setdefault(x.user, []).append(x)
        return mine

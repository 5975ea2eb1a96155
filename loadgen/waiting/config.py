"""The settings of a `waiting-room` run: the shared Config plus who queues, when, how fast."""

from __future__ import annotations

from dataclasses import dataclass

from loadgen.config import Config

DEFAULT_DURATION = 180.0
"""The most a run may take (s); it ends by itself once every user is done."""
DEFAULT_ROUTES = 3
DEFAULT_SEATS = 200
"""Per route: 600 seats for 7,500 users, so the sale sells out and most hear sold-out."""
DEFAULT_EARLY = 6_000
"""Pre-opening joiners: past the 5,000 the order check needs to judge Spearman's rho."""
DEFAULT_LATE = 1_500
DEFAULT_TIGHT_BOTS = 8
DEFAULT_SKIP_BOTS = 6
DEFAULT_OPENS_IN = 20.0
DEFAULT_LATE_WINDOW = 15.0
DEFAULT_SPREAD = 2.0


@dataclass(frozen=True)
class WaitingConfig:
    """A waiting-room run. `base` carries the URL, secret, report path, seed, routes, seats
    (per route), connections (`concurrency`), request timeout and the run's cap (`duration`)."""

    base: Config
    early: int = DEFAULT_EARLY
    late: int = DEFAULT_LATE
    tight_bots: int = DEFAULT_TIGHT_BOTS
    skip_bots: int = DEFAULT_SKIP_BOTS
    opens_in: float = DEFAULT_OPENS_IN
    """Seconds from the sale's creation to its opening; the early joiners come in between."""
    late_window: float = DEFAULT_LATE_WINDOW
    """Late joiners come within this many seconds after the opening."""
    spread: float = DEFAULT_SPREAD
    """Early joiners' first poll after the opening comes within this many seconds of it."""
    admit_per_second: float | None = None
    """None: the server's automatic admission."""

    def __post_init__(self) -> None:
        if self.base.scenario != "waiting-room":
            raise ValueError(f"a waiting-room run cannot play {self.base.scenario!r}")
        if min(self.early, self.late, self.tight_bots, self.skip_bots) < 0:
            raise ValueError("--early, --late, --tight-bots and --skip-bots cannot be negative")
        if self.early + self.late == 0:
            raise ValueError("a waiting room needs users: give --early or --late above 0")
        if not 2.0 <= self.opens_in <= 600.0:
            raise ValueError("--opens-in must be 2 to 600 seconds: the early joiners come first")
        if self.late_window < 0 or self.spread < 0:
            raise ValueError("--late-window and the poll spread cannot be negative")
        if self.base.duration <= self.opens_in + self.late_window:
            raise ValueError(
                "--duration must exceed --opens-in plus --late-window: the run would end "
                "before its last user joined"
            )
        if self.admit_per_second is not None and not 0 < self.admit_per_second <= 100_000:
            raise ValueError("--admit-per-second must be above 0 and at most 100,000")

    @property
    def routes(self) -> int:
        """Routes in the sale."""
        return self.base.routes or DEFAULT_ROUTES

    @property
    def seats(self) -> int:
        """Seats per route."""
        return self.base.seats or DEFAULT_SEATS

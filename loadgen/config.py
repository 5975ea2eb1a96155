"""The settings of one loadgen run, checked when built."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SCENARIOS = ("flash-sale", "mixed", "steady", "waiting-room")
MAX_SEATS = 5_000
"""Per route: ticketd accepts at most 5,000 seats per route (actors/domain/route.py)."""
DEFAULT_DURATION = 30.0
STEADY_DEFAULT_RATE = 200.0
"""Requests/s for `steady` when no --rate is given: it is an open-loop scenario by definition."""


@dataclass(frozen=True)
class Config:
    """Everything a run needs; `run(config)` reads nothing else (no environment, no argv)."""

    url: str
    jwt_secret: str
    scenario: str = "flash-sale"
    duration: float = DEFAULT_DURATION
    concurrency: int = 64
    rate: float | None = None
    report: Path | None = None
    routes: int | None = None
    seats: int | None = None
    seed: int | None = None
    timeout: float = 10.0
    max_requests: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--url must look like http://127.0.0.1:8000, not {self.url!r}")
        if not self.jwt_secret:
            raise ValueError("a JWT secret is needed: pass --jwt-secret or set TICKETD_JWT_SECRET")
        if self.scenario not in SCENARIOS:
            choices = ", ".join(SCENARIOS)
            raise ValueError(f"unknown scenario {self.scenario!r}; choose one of {choices}")
        if self.duration <= 0:
            raise ValueError("--duration must be a positive number of seconds")
        if self.concurrency < 1:
            raise ValueError("--concurrency must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("--rate must be a positive number of requests per second")
        if self.routes is not None and not 1 <= self.routes <= 100:
            raise ValueError("--routes must be between 1 and 100")
        if self.seats is not None and not 1 <= self.seats <= MAX_SEATS:
            raise ValueError(f"--seats must be between 1 and {MAX_SEATS} per route")
        if self.timeout <= 0:
            raise ValueError("--timeout must be a positive number of seconds")
        if self.max_requests is not None and self.max_requests < 1:
            raise ValueError("--max-requests must be at least 1")

    @property
    def base_url(self) -> str:
        """The URL without a trailing slash, ready for `+ "/v1/..."`."""
        return self.url.rstrip("/")

    @property
    def effective_rate(self) -> float | None:
        """The open-loop rate, or None for closed loop."""
        if self.rate is None and self.scenario == "steady":
            return STEADY_DEFAULT_RATE
        return self.rate

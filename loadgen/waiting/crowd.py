"""Who comes to the sale and when: a pure function of the config, the seed and the run's tag."""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from loadgen.waiting.config import WaitingConfig
from loadgen.waiting.history import Kind

EDGE_S = 0.5
"""Early joins end this long before the opening: a join racing the draw lands in the
pre-queue or after it by a few milliseconds of luck, which blurs neither check (the audit
sorts joiners by the server's answer) but leaves the early ones all early."""
SKIP_VARIANTS = ("none", "forged", "borrowed")


@dataclass(frozen=True, slots=True)
class Member:
    """One user: who, what kind, and when they come (seconds from the opening; negative is
    before it)."""

    user: str
    kind: Kind
    arrives: float
    variant: str = ""
    """A queue-skipper's Admission header: `none`, `forged` or `borrowed` (someone else's)."""


def crowd(config: WaitingConfig, rng: Random, run_tag: str) -> list[Member]:
    """Everyone of the run, in no particular order. Early joiners come uniformly over the time
    before the opening, late ones over `late_window` after it; tight pollers split between the
    two; queue-skippers start halfway to the opening, before anyone can be admitted."""
    first = -config.opens_in + EDGE_S
    members: list[Member] = []

    def add(kind: Kind, arrives: float, variant: str = "") -> None:
        user = f"lg{run_tag}-w{len(members):05d}"
        members.append(Member(user, kind, round(arrives, 4), variant))

    for _ in range(config.early):
        add(Kind.EARLY, rng.uniform(first, -EDGE_S))
    for _ in range(config.late):
        add(Kind.LATE, rng.uniform(0.0, config.late_window))
    for n in range(config.tight_bots):
        before = n % 2 == 0
        add(Kind.TIGHT, rng.uniform(first, -EDGE_S) if before else rng.uniform(0.0, 2.0))
    for n in range(config.skip_bots):
        add(Kind.SKIP, -config.opens_in / 2, SKIP_VARIANTS[n % len(SKIP_VARIANTS)])
    return members

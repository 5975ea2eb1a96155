"""The fault schedule: which fault, when, on what, for how long; a pure function of a seed.

The same seed, duration and kinds give the same schedule, so a failing run is replayed
with `--seed`. Targets are picked when a fault fires (which actor or worker exists then
depends on the run), from a random stream seeded by the fault itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: every kind of fault, and what it does
KINDS: dict[str, str] = {
    "redis-kill": "SIGKILL the Redis server (its supervisor restarts it on the same AOF)",
    "redis-pause": "SIGSTOP the Redis server, SIGCONT it after the pause",
    "actor-kill": "SIGKILL one route actor's process (Ray restarts the actor)",
    "fe-kill": "SIGKILL one front-end worker (the front end's supervisor replaces it)",
    "fe-pause": "SIGSTOP one front-end worker, SIGCONT it after the pause",
    "node-kill": "SIGKILL every process of one Ray worker node (a machine lost)",
    "node-pause": "SIGSTOP every process of one Ray worker node past the health checks",
}

#: seconds from a fault's end (its SIGCONT, for a pause; its signal, for a kill) within
#: which every route must acknowledge a booking sent after that end; for a frozen node,
#: from the freeze (FROM_START): its routes must move to other nodes while it sleeps.
#: From the self-healing work: Redis ~0.3 s, an actor ~2 s (a new worker process), a
#: lost node <= 10 s, a frozen node <= 15 s; a front-end worker's loss touches no route
#: (its siblings serve) and its replacement is reported on its own. Each bound has room
#: for a 2-core machine running the whole cluster and the load. Redis gets 6 s, not the
#: 0.3 s of a small data set: minutes into a sale its restart loads ~170 MB of AOF
#: (1.5-1.8 s; most of it the 120 s "answered from a cache" marks of ~3k refusals/s),
#: then each route actor rebuilds its state (snapshot plus up to one snapshot interval of
#: journal: ~2 s for a hot route of ~100k bookings); a pause's writes time out (5 s)
#: and need the same rebuild (docs/benchmarks.md, the nemesis soak).
BOUNDS: dict[str, float] = {
    "redis-kill": 6.0,
    "redis-pause": 6.0,
    "actor-kill": 8.0,
    "fe-kill": 3.0,
    "fe-pause": 3.0,
    "node-kill": 10.0,
    "node-pause": 15.0,
}

#: the kinds whose recovery counts from the fault's start, not its end
FROM_START = frozenset({"node-pause"})

#: how long a pause lasts, (shortest, longest) seconds. A front-end worker's pause stays
#: well inside the client timeout: its requests must still be answered. A node's pause is
#: longer than the GCS health checks (about 3 s): the node is declared dead.
PAUSES: dict[str, tuple[float, float]] = {
    "redis-pause": (0.5, 3.0),
    "fe-pause": (0.5, 3.0),
    "node-pause": (5.0, 8.0),
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One planned fault: `kind` at `at` seconds into the load, lasting `pause` seconds (0
    for a kill), its target picked with `pick` (a number the injector maps onto whatever
    targets exist then)."""

    n: int
    at: float
    kind: str
    pause: float
    pick: int

    @property
    def ends(self) -> float:
        """When the fault is over (the SIGCONT of a pause), in seconds into the load."""
        return self.at + self.pause


def plan(
    seed: int,
    duration: float,
    faults: int,
    kinds: tuple[str, ...] = tuple(KINDS),
    quiet_start: float = 5.0,
    quiet_end: float = 15.0,
    overlap: float = 0.25,
) -> list[Fault]:
    """`faults` faults inside [quiet_start, duration - quiet_end], every kind in turn (in a
    shuffled order each round, so each appears about equally often), at random times;
    about `overlap` of them start within 1.5 s of the previous one, so faults overlap."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; choose from {sorted(KINDS)}")
    if not kinds or faults < 1:
        return []
    window = duration - quiet_start - quiet_end
    if window <= 0:
        raise ValueError(
            f"a run of {duration:g} s leaves no time for faults: the first {quiet_start:g} s "
            f"and the last {quiet_end:g} s are kept quiet"
        )
    rnd = random.Random(seed)
    order: list[str] = []
    while len(order) < faults:
        round_ = list(kinds)
        rnd.shuffle(round_)
        order += round_
    # gaps between starts: some short (overlapping faults), the rest spread at random and
    # scaled so the last fault starts by the end of the window
    short = [rnd.random() < overlap for _ in range(faults - 1)]
    gaps = [rnd.uniform(0.2, 1.5) if s else rnd.uniform(1.0, 3.0) for s in short]
    spread = sum(g for g, s in zip(gaps, short, strict=True) if not s)
    room = max(0.0, window - sum(g for g, s in zip(gaps, short, strict=True) if s))
    scale = room / spread if spread else 0.0
    out: list[Fault] = []
    at = quiet_start
    for n, kind in enumerate(order[:faults]):
        lo, hi = PAUSES.get(kind, (0.0, 0.0))
        pause = round(rnd.uniform(lo, hi), 2) if hi else 0.0
        out.append(Fault(n + 1, round(at, 2), kind, pause, rnd.randrange(1 << 30)))
        if n < len(gaps):
            at += gaps[n] if short[n] else gaps[n] * scale
    return out

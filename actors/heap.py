"""Keeps CPython's full garbage collections off the hot path of a long-lived process.

A full (generation 2) collection walks every container object the process holds, and
holds the GIL while it does. A front-end worker holds Ray's, Starlette's and ticketd's
modules (~60 ms a walk on our 2-core machine); a route actor also holds every booking of
its route, so its walks grow with the sale (50 → 200 ms over 110,000 bookings). Under
booking load CPython runs one every second or so, because requests in flight survive
the young collections; each one stalls every request the process has in flight. On the
hot route those stalls were the p99 (180 ms; docs/benchmarks.md), and under load they
collected nothing.

So every `freeze_every` seconds a thread moves everything alive into the permanent
generation (`gc.freeze()`, O(1): a list splice), which the collector never walks. The
young collections go on as before, and a full one only walks what arrived since the last
freeze. Frozen objects are still freed by their reference counts the moment nothing
refers to them; only garbage in reference cycles among them waits, until the full pass
that runs every `full_every` seconds (unfreeze, collect, freeze again): one stall of the
old length per `full_every` instead of one a second, and a bound on what can wait.

One keeper per process (`keep`); `TICKETD_GC_FREEZE_SECONDS=0` leaves CPython's own
collector alone.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import structlog

log = structlog.get_logger("ticketd.heap")

#: how often everything alive is frozen
FREEZE_SECONDS = 1.0
#: how often frozen cyclic garbage is collected after all (one full pass)
FULL_SECONDS = 600.0


class HeapKeeper:
    """A daemon thread that freezes the heap every `freeze_every` s, fully collects every
    `full_every` s."""

    def __init__(self, freeze_every: float = FREEZE_SECONDS, full_every: float = FULL_SECONDS):
        if freeze_every <= 0 or full_every < freeze_every:
            raise ValueError("need 0 < freeze_every <= full_every")
        self.freeze_every, self.full_every = freeze_every, full_every
        self.full_passes = 0
        self.last_full_ms = 0.0
        self.last_collected = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        gc.freeze()  # what start-up left: modules, connections, a recovered route
        self._thread = threading.Thread(target=self._run, name="ticketd-heap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, and hand every frozen object back to the collector."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        gc.unfreeze()

    def full_pass(self) -> None:
        """Collect everything, frozen included, then freeze what is left."""
        started = time.perf_counter()
        gc.unfreeze()
        self.last_collected = gc.collect()
        gc.freeze()
        self.last_full_ms = (time.perf_counter() - started) * 1000
        self.full_passes += 1
        log.info(
            "heap collected",
            ms=round(self.last_full_ms, 1),
            collected=self.last_collected,
            frozen=gc.get_freeze_count(),
        )

    def figures(self) -> dict[str, Any]:
        """For an operator: what is frozen, and the last full pass."""
        return {
            "frozen": gc.get_freeze_count(),
            "full_passes": self.full_passes,
            "last_full_ms": round(self.last_full_ms, 1),
            "last_collected": self.last_collected,
        }

    def _run(self) -> None:
        next_full = time.monotonic() + self.full_every
        while not self._stop.wait(self.freeze_every):
            if time.monotonic() >= next_full:
                self.full_pass()
                next_full = time.monotonic() + self.full_every
            else:
                gc.freeze()


_keeper: HeapKeeper | None = None
_lock = threading.Lock()


def keep(freeze_every: float = FREEZE_SECONDS) -> HeapKeeper | None:
    """This process's keeper, started on first call; None (CPython's collector) for 0."""
    global _keeper
    if freeze_every <= 0:
        return None
    with _lock:
        if _keeper is None:
            _keeper = HeapKeeper(freeze_every, max(FULL_SECONDS, freeze_every))
            _keeper.start()
        return _keeper

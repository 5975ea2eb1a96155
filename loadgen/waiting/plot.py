"""A PNG of a waiting-room run: queue length, admitted/s and bookings/s per second."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from loadgen.waiting.report import Second


def write_plot(timeline: Sequence[Second], path: Path, title: str) -> None:
    """Three stacked panels over seconds from the opening (a dashed line marks it)."""
    # Imported here: matplotlib takes seconds to import and only the last step of a run needs it.
    from matplotlib.figure import Figure

    # A bare Figure renders through Agg without pyplot: no global state, no GUI backend.
    fig = Figure(figsize=(10, 8), layout="constrained")
    queue, admitted, booked = fig.subplots(3, 1, sharex=True)
    t = [s.t for s in timeline]
    mid = [x + 0.5 for x in t]
    queue.plot(mid, [s.queue for s in timeline], color="tab:blue", label="in the queue (loadgen)")
    server = [math.nan if s.server_queue is None else s.server_queue for s in timeline]
    queue.plot(mid, server, color="tab:gray", linestyle="--", label="joined, not admitted (server)")
    queue.set_ylabel("queue length")
    queue.set_title(title)
    queue.legend(loc="upper right")
    admitted.bar(t, [s.admitted for s in timeline], width=0.9, align="edge", color="tab:green")
    admitted.set_ylabel("admitted / s")
    booked.bar(t, [s.bookings for s in timeline], width=0.9, align="edge", color="tab:orange")
    booked.set_ylabel("bookings / s")
    booked.set_xlabel("seconds from the opening")
    for ax in (queue, admitted, booked):
        ax.axvline(0, color="black", linestyle=":", linewidth=1)
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)

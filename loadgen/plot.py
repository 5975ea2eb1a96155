"""A PNG of throughput and p50/p99 latency per second of the run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from loadgen.stats import Second


def write_plot(timeline: Sequence[Second], path: Path, title: str) -> None:
    """Two stacked panels: answers per second, and p50/p99 latency in ms (log scale)."""
    # Imported here: matplotlib takes seconds to import and only the last step of a run needs it.
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    # A bare Figure renders through Agg without pyplot: no global state, no GUI backend.
    fig = Figure(figsize=(10, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    t = [s.t for s in timeline]
    top.bar(t, [s.requests for s in timeline], width=0.9, align="edge", color="tab:blue")
    top.set_ylabel("answers / s")
    top.set_title(title)
    # Seconds with nothing timed have no latency: NaN leaves a gap instead of a false zero.
    p50 = [s.p50_ms if s.p99_ms > 0 else math.nan for s in timeline]
    p99 = [s.p99_ms if s.p99_ms > 0 else math.nan for s in timeline]
    mid = [x + 0.5 for x in t]
    bottom.plot(mid, p50, marker=".", label="p50")
    bottom.plot(mid, p99, marker=".", label="p99")
    if any(v > 0 for v in p50 + p99 if not math.isnan(v)):
        bottom.set_yscale("log")
        bottom.yaxis.set_major_formatter(ScalarFormatter())
        bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds since start")
    bottom.legend(loc="upper left")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)

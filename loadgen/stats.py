"""Latency and throughput bookkeeping: HDR histograms overall, per operation and per second."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec
from hdrh.histogram import HdrHistogram

MICROS = 1_000_000
HIGHEST_US = 3_600 * MICROS
"""Latencies are recorded in microseconds up to an hour; longer ones are clamped to it."""


def _histogram(significant: int = 3) -> HdrHistogram:
    return HdrHistogram(1, HIGHEST_US, significant)


def _record(hist: HdrHistogram, seconds: float) -> None:
    hist.record_value(min(HIGHEST_US, max(1, round(seconds * MICROS))))


def _ms(hist: HdrHistogram, percentile: float) -> float:
    if hist.get_total_count() == 0:
        return 0.0
    return round(float(hist.get_value_at_percentile(percentile)) / 1000, 3)


class Latency(msgspec.Struct, frozen=True):
    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float
    count: int

    @classmethod
    def of(cls, hist: HdrHistogram) -> Latency:
        """Milliseconds at the usual percentiles of `hist`."""
        empty = hist.get_total_count() == 0
        return cls(
            p50=_ms(hist, 50),
            p90=_ms(hist, 90),
            p99=_ms(hist, 99),
            p999=_ms(hist, 99.9),
            max=0.0 if empty else round(hist.get_max_value() / 1000, 3),
            mean=0.0 if empty else round(hist.get_mean_value() / 1000, 3),
            count=hist.get_total_count(),
        )


class Second(msgspec.Struct, frozen=True):
    """One second of the run: answers completed in it, and the latency of those and of the
    requests that timed out in it."""

    t: int
    requests: int
    p50_ms: float
    p99_ms: float


class Schedule(msgspec.Struct):
    """Open loop only: requests sent more than 10 ms behind their intended time, requests whose
    time came before the deadline but that were never sent, and the worst lag."""

    late: int = 0
    unsent: int = 0
    max_lag_ms: float = 0.0


@dataclass
class _Bucket:
    hist: HdrHistogram = field(default_factory=lambda: _histogram(2))
    count: int = 0


class Stats:
    """Everything measured during the load phase; times are `loop.time()` seconds."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.total = _histogram()
        self.by_op: dict[str, HdrHistogram] = {}
        self.status: Counter[str] = Counter()
        self.ops: Counter[str] = Counter()
        self.answered = 0
        self._buckets: list[_Bucket] = []

    def record(self, op: str, key: str, intended: float, ended: float, *, answered: bool) -> None:
        """One request of kind `op` that ended as `key`, timed from its intended send time.

        Requests that got no HTTP answer still count in the status mix; their latency is kept
        only for timeouts (a lower bound), not for refused connections, which end at once.
        """
        self.ops[op] += 1
        self.status[key] += 1
        if not answered and key != "timeout":
            return
        bucket = self._bucket(ended)
        if answered:
            self.answered += 1
            bucket.count += 1
        latency = ended - intended
        _record(self.total, latency)
        hist = self.by_op.get(op)
        if hist is None:
            hist = self.by_op[op] = _histogram()
        _record(hist, latency)
        _record(bucket.hist, latency)

    def count(self, op: str, key: str) -> None:
        """A request that ended without a meaningful latency (aborted at the deadline)."""
        self.ops[op] += 1
        self.status[key] += 1

    @property
    def requests(self) -> int:
        """Every request issued, however it ended."""
        return sum(self.status.values())

    def latency(self) -> Latency:
        """Percentiles over the whole run."""
        return Latency.of(self.total)

    def latency_by_op(self) -> dict[str, Latency]:
        """Percentiles per operation kind."""
        return {op: Latency.of(hist) for op, hist in sorted(self.by_op.items())}

    def timeline(self) -> list[Second]:
        """Per-second throughput and latency, gaps included as zero rows."""
        return [
            Second(t=i, requests=b.count, p50_ms=_ms(b.hist, 50), p99_ms=_ms(b.hist, 99))
            for i, b in enumerate(self._buckets)
        ]

    def recent_rate(self, now: float) -> float:
        """Answers per second over the last completed second."""
        index = int(now - self.start) - 1
        return float(self._buckets[index].count) if 0 <= index < len(self._buckets) else 0.0

    def _bucket(self, at: float) -> _Bucket:
        index = max(0, int(at - self.start))
        while len(self._buckets) <= index:
            self._buckets.append(_Bucket())
        return self._buckets[index]

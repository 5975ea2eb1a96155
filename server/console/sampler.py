"""Once a second, the front end's own counters: the operator console's sales curve and
front-end figures, computed from the Prometheus metrics objects (never their text).

The figures cover this front end only: in a cluster each front end keeps its own
curve (the operator page shows the one it is served by; behind a load balancer,
ask each node, or read /metrics of all of them in Prometheus).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass

from prometheus_client import Histogram
from prometheus_client.metrics_core import Metric

from actors.domain.route import pair_index
from server import metrics
from server.console import payloads as out
from server.dispatch.gateway import Gateway

#: seconds of history kept (the curve shows up to this much)
HISTORY = 600
#: the window of the front-end figures
WINDOW = 60
#: a histogram as cumulative counts per upper bound, bounds ascending
Buckets = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative counters at one moment."""

    t: float
    requests: float
    unavailable: float
    booked: float
    refused: float
    seats_left: int
    batch_count: float
    batch_sum: float
    batches: Buckets
    latency: Buckets
    booking: Buckets


def _buckets(metric: Histogram, endpoint: str | None = None) -> Buckets:
    counts: dict[float, float] = {}
    for family in metric.collect():
        for s in family.samples:
            if not s.name.endswith("_bucket"):
                continue
            if endpoint is not None and s.labels.get("endpoint") != endpoint:
                continue
            bound = float(s.labels["le"])
            counts[bound] = counts.get(bound, 0.0) + s.value
    bounds = tuple(sorted(counts))
    return bounds, tuple(counts[b] for b in bounds)


def _total(family: Metric, suffix: str) -> float:
    return sum(s.value for s in family.samples if s.name.endswith(suffix))


def sample(gateway: Gateway) -> Sample:
    """The counters now."""
    requests = unavailable = booked = refused = 0.0
    for family in metrics.REQUESTS.collect():
        for s in family.samples:
            if not s.name.endswith("_total"):
                continue
            requests += s.value
            status = s.labels["status"]
            if status == "503":
                unavailable += s.value
            if s.labels["endpoint"] == "book":
                if status == "201":
                    booked += s.value
                elif status == "409":
                    refused += s.value
    (batch,) = metrics.BATCH_SIZE.collect()
    left = 0
    for ch in gateway.channels():
        matrix = ch.matrix
        n = ch.n
        if matrix is not None and n > 1:
            whole = pair_index(0, n - 1, n)
            left += sum(row[whole] for row in matrix.values())
    return Sample(
        time.time(), requests, unavailable, booked, refused, left,
        _total(batch, "_count"), _total(batch, "_sum"), _buckets(metrics.BATCH_SIZE),
        _buckets(metrics.LATENCY), _buckets(metrics.LATENCY, "book"),
    )  # fmt: skip


def quantile(now: Buckets, then: Buckets, q: float) -> float | None:
    """The upper bound of the bucket holding quantile q of what happened between two
    samples; None if nothing did (the +Inf bucket answers its lower neighbour's bound)."""
    bounds, counts = now
    before = dict(zip(*then, strict=True))
    delta = [c - before.get(b, 0.0) for b, c in zip(bounds, counts, strict=True)]
    if not delta or delta[-1] <= 0:
        return None
    rank = q * delta[-1]
    for bound, cum in zip(bounds, delta, strict=True):
        if cum >= rank:
            if math.isinf(bound):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else None
            return bound
    return None


def _point(a: Sample, b: Sample) -> out.SalePoint:
    """What happened between two consecutive samples."""
    return out.SalePoint(
        round(b.t, 3), int(b.booked - a.booked), int(b.refused - a.refused),
        int(b.unavailable - a.unavailable), b.seats_left,
    )  # fmt: skip


class Sampler:
    """A ring of per-second samples, filled by `run`."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.samples: deque[Sample] = deque(maxlen=HISTORY + 1)

    async def run(self) -> None:
        """Sample at every whole second until cancelled."""
        self.samples.append(sample(self.gateway))
        while True:
            await asyncio.sleep(1.0 - time.time() % 1.0)
            self.samples.append(sample(self.gateway))

    def sales(self, seconds: int) -> out.Sales:
        """Per-second bookings, refusals, 503s and seats left over the last `seconds`."""
        ring = list(self.samples)[-(seconds + 1) :]
        points = [_point(a, b) for a, b in itertools.pairwise(ring)]
        scope = "this front end: bookings it answered, seats of the routes it has served"
        return out.Sales(1.0, scope, points)

    def frontend(self) -> out.Frontend:
        """Batch sizes, p99s and the 503 share over the last WINDOW seconds."""
        now = sample(self.gateway)
        ring = list(self.samples)
        then = ring[-WINDOW] if len(ring) >= WINDOW else (ring[0] if ring else now)
        span = max(now.t - then.t, 1e-9)
        requests = now.requests - then.requests
        batches = now.batch_count - then.batch_count
        mean = (now.batch_sum - then.batch_sum) / batches if batches else None
        latency = quantile(now.latency, then.latency, 0.99)
        booking = quantile(now.booking, then.booking, 0.99)
        return out.Frontend(
            window_seconds=round(span, 1),
            requests_per_second=round(requests / span, 1),
            batches=int(batches),
            batch_size_mean=None if mean is None else round(mean, 2),
            batch_size_p99=quantile(now.batches, then.batches, 0.99),
            queue_depth=self.gateway.queue_depth(),
            latency_p99_ms=None if latency is None else latency * 1000,
            booking_p99_ms=None if booking is None else booking * 1000,
            unavailable_rate=round((now.unavailable - then.unavailable) / requests, 4)
            if requests
            else 0.0,
        )

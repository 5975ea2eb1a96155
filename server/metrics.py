"""Prometheus metrics of the front end (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

REQUESTS = Counter(
    "ticketd_http_requests_total",
    "HTTP requests by endpoint, method and status",
    ["endpoint", "method", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "ticketd_http_request_seconds",
    "HTTP request latency by endpoint",
    ["endpoint"],
    buckets=_LATENCY,
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "ticketd_batch_size",
    "Commands per actor call",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
    registry=REGISTRY,
)
GATHER = Histogram(
    "ticketd_batch_gather_seconds",
    "How long a batched call waited under load until as many requests had queued as "
    "the last call saw (at most TICKETD_BATCH_LINGER_MS)",
    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.25, 1.0),
    registry=REGISTRY,
)
ACTOR_CALL = Histogram(
    "ticketd_actor_call_seconds",
    "Latency of one batched actor call (includes the Redis append)",
    buckets=_LATENCY,
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "ticketd_queue_depth", "Requests waiting for an actor call, all routes", registry=REGISTRY
)
OVERLOADED = Counter(
    "ticketd_overloaded_total", "Requests refused because a route queue was full", registry=REGISTRY
)
SOLD_OUT_CACHED = Counter(
    "ticketd_sold_out_from_cache_total",
    "Booking requests answered sold-out from the availability snapshot, no actor call",
    registry=REGISTRY,
)
PLANE_CONNECTS = Counter(
    "ticketd_plane_connects_total",
    "Data-plane connections made to route actors (first use, restarts, reconnects)",
    registry=REGISTRY,
)

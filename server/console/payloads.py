"""Answers of the console's JSON endpoints, as msgspec types (they feed /openapi.json)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class CoachSeats(msgspec.Struct, array_like=False):
    number: str
    klass: str = msgspec.field(name="class")
    rows: int = 0
    letters: str = ""
    taken: Annotated[
        list[str], Meta(description="Seats (row + letter, e.g. 07C) taken on some segment of "
                        "the trip; every other seat of the coach is free for it")
    ] = []  # fmt: skip


class SeatsOut(msgspec.Struct):
    route_id: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    coaches: list[CoachSeats] = []
    free: Annotated[dict[str, int], Meta(description="Free seats per class for the trip")] = {}
    version: Annotated[int, Meta(description="The route actor's version of this seat map")] = 0


class AdminRoute(msgspec.Struct):
    route_id: str
    train: str
    seats: Annotated[int, Meta(description="Seats of the train")]
    free: Annotated[int, Meta(description="Seats free from the first station to the last")]
    active: Annotated[bool, Meta(description="The route's actor is running")]
    sold: Annotated[int | None, Meta(description="Seats of paid bookings; null while idle")]
    held: Annotated[int | None, Meta(description="Seats held unpaid; null while idle")]
    waitlisted: Annotated[int | None, Meta(description="Passengers waiting; null while idle")]


class AdminRoutes(msgspec.Struct):
    date: str
    routes: list[AdminRoute]


class SalePoint(msgspec.Struct, array_like=False):
    t: Annotated[float, Meta(description="Unix time of the end of the second")]
    bookings: Annotated[int, Meta(description="Bookings held in that second (201)")]
    refused: Annotated[int, Meta(description="Booking requests answered 409 (sold out, …)")]
    overloaded: Annotated[int, Meta(description="Requests answered 503")]
    seats_left: Annotated[int, Meta(description="Seats free end to end on the routes this "
                                    "front end serves")]  # fmt: skip


class Sales(msgspec.Struct):
    interval: Annotated[float, Meta(description="Seconds per point")]
    scope: Annotated[str, Meta(description="What the figures cover")]
    points: Annotated[list[SalePoint], Meta(description="Oldest first")]


class ActorOut(msgspec.Struct):
    route_id: str
    node_id: str
    node: Annotated[str, Meta(description="The node's address")]
    pid: int
    epoch: int
    recovery_seconds: float
    events_applied: Annotated[int, Meta(description="Events journalled and applied")]
    batches: int
    idle_seconds: float
    state: Annotated[str, Meta(description="active (a command within 5 s) | idle")]


class Actors(msgspec.Struct):
    actors: list[ActorOut]
    unreachable: Annotated[list[str], Meta(description="Routes whose actor did not answer")] = []


class Frontend(msgspec.Struct):
    window_seconds: Annotated[float, Meta(description="The figures cover the last this many s")]
    requests_per_second: float
    batches: int
    batch_size_mean: float | None
    batch_size_p99: Annotated[float | None, Meta(description="Upper bound of the p99 bucket")]
    queue_depth: Annotated[int, Meta(description="Requests waiting now, all routes")]
    latency_p99_ms: Annotated[float | None, Meta(description="All endpoints, bucket bound")]
    booking_p99_ms: Annotated[float | None, Meta(description="Booking endpoint, bucket bound")]
    unavailable_rate: Annotated[float, Meta(description="Share of answers that were 503")]

"""One prober per route: a waitlist booking every `interval`, so every route's recovery is
seen however the flash sale's demand is skewed and whether or not its trips sold out (a
waitlist request is always answered by the route's actor, 201 held or 202 waitlisted,
never from a front end's memory). Probes are filed in the run's ledger: the audit covers
them like every other request."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from loadgen.client import Answer, TicketdClient
from loadgen.driver import outcome_of
from loadgen.ledger import BookAttempt
from loadgen.routes import route_id
from loadgen.runner import Side
from loadgen.scenarios import Book
from loadgen.wire import BookingRequest, Passenger, RouteDef


async def probe(
    side: Side, record: Callable[[Book, Answer, float, float], None], interval: float = 0.25
) -> None:
    """Probe every route until the load's deadline."""
    loop = asyncio.get_running_loop()
    tag = f"{secrets.randbelow(1_000_000):06d}"
    serial = 0

    def next_probe(route: RouteDef) -> Book:
        nonlocal serial
        serial += 1
        # 18 digits like the load's passenger ids, in a range the load never reaches
        pax = Passenger(name="Probe", id=f"{tag}{900_000_000 + serial:09d}000")
        first, second = route.stations[0], route.stations[1]
        klass = next(c.klass for c in route.coaches if c.klass == "second")
        request = BookingRequest(
            origin=first, destination=second, klass=klass, passengers=(pax,), waitlist=True
        )
        return Book(route_id(route), f"probe{tag}-{serial}", f"probe-{tag}-{serial}", request)

    async def one(client: TicketdClient, route: RouteDef) -> None:
        while loop.time() < side.deadline:
            op = next_probe(route)
            sent = loop.time()
            answer = await client.book(op.route_id, op.user, op.request, op.key)
            ended = loop.time()
            outcome, booking = outcome_of(answer)
            side.ledger.attempts.append(
                BookAttempt(op.key, op.route_id, op.user, op.request, outcome, booking)
            )
            record(op, answer, sent, ended)
            await asyncio.sleep(max(0.0, min(interval - (ended - sent), side.deadline - ended)))

    timeout = side.config.timeout
    async with TicketdClient(
        side.config.base_url, side.tokens, limit=len(side.routes), timeout=timeout
    ) as client:
        await asyncio.gather(*(one(client, r) for r in side.routes))

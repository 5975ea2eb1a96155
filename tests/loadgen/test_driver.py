"""The load driver: closed and open loop, latency from the intended send time, the deadline."""

from __future__ import annotations

import asyncio
import json
from random import Random
from typing import Any

import pytest

from loadgen.client import Answer, Failure, Reply
from loadgen.driver import Driver, Limits, outcome_of
from loadgen.ledger import Ledger, Outcome
from loadgen.routes import coaches, stations
from loadgen.scenarios import FlashSale, Mixed, Workload
from loadgen.stats import Stats
from loadgen.wire import BookingRequest, RouteDef

ROUTE = RouteDef(
    train="L0002",
    date="2027-01-02",
    stations=stations(4),
    coaches=coaches(100),
    route_id="L0002-20270102",
)


class StubClient:
    """Answers every call after `delay` seconds (forever, if `hang`)."""

    def __init__(self, delay: float, *, hang: bool = False) -> None:
        self.delay, self.hang, self.calls = delay, hang, 0

    async def _wait(self) -> None:
        self.calls += 1
        await asyncio.sleep(3600 if self.hang else self.delay)

    async def availability(self, route_id: str, origin: str, destination: str) -> Answer:
        await self._wait()
        body = {"route_id": route_id, "from": origin, "to": destination, "availability": {}}
        return Reply(200, json.dumps(body).encode())

    async def book(self, route_id: str, user: str, request: BookingRequest, key: str) -> Answer:
        await self._wait()
        n = self.calls
        seats = [{"coach": "02", "seat": f"{n:02d}A", "passenger": k} for k in range(1)]
        body = {
            "booking_id": f"B{n}",
            "route_id": route_id,
            "status": "held",
            "from": request.origin,
            "to": request.destination,
            "class": request.klass,
            "seats": seats,
        }
        return Reply(201, json.dumps(body).encode())

    async def confirm(self, booking_id: str, user: str) -> Answer:
        await self._wait()
        return Reply(409, b'{"type": "invalid-state"}')

    async def cancel(self, booking_id: str, user: str) -> Answer:
        await self._wait()
        return Failure("timeout", "stub")


async def _drive(
    client: StubClient, workload: Workload, duration: float, **limits: Any
) -> tuple[Driver, Ledger]:
    loop = asyncio.get_running_loop()
    stats, ledger = Stats(loop.time()), Ledger()
    driver = Driver(
        client,  # type: ignore[arg-type]
        workload,
        stats,
        ledger,
        Limits(deadline=stats.start + duration, **limits),
    )
    await driver.run()
    return driver, ledger


def _mixed() -> Workload:
    return Mixed([ROUTE], Random(1), "123456", users=10)


async def test_closed_loop_latency_is_the_service_time() -> None:
    driver, _ = await _drive(StubClient(0.02), _mixed(), 0.4, concurrency=2)

    latency = driver.stats.latency()
    assert 15 <= latency.p50 <= 60
    assert driver.stats.requests == latency.count > 20


async def test_open_loop_charges_queueing_to_latency_when_the_server_falls_behind() -> None:
    # 100/s offered, one connection, 50 ms service: the server can do 20/s.
    driver, _ = await _drive(StubClient(0.05), _mixed(), 0.5, concurrency=1, rate=100.0)

    latency = driver.stats.latency()
    assert latency.max > 150  # waited for the connection, measured from the intended send time
    assert driver.schedule.late > 0
    assert driver.schedule.unsent > 0
    assert driver.issued + driver.schedule.unsent == 50


async def test_open_loop_keeps_its_rate_when_the_server_keeps_up() -> None:
    driver, _ = await _drive(StubClient(0.001), _mixed(), 0.5, concurrency=8, rate=100.0)

    assert 45 <= driver.issued <= 50
    assert driver.schedule.unsent <= 2
    assert driver.stats.latency().p50 < 20


async def test_max_requests_stops_the_run_early() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    driver, _ = await _drive(StubClient(0.001), _mixed(), 10.0, concurrency=3, max_requests=30)

    assert driver.issued == driver.stats.requests == 30
    assert loop.time() - started < 2


async def test_requests_still_in_flight_after_the_drain_are_aborted_as_indeterminate() -> None:
    workload = FlashSale([ROUTE], Random(2), "123456", users=10)
    loop = asyncio.get_running_loop()
    started = loop.time()

    driver, ledger = await _drive(StubClient(0, hang=True), workload, 0.2, concurrency=4, drain=0.1)

    assert loop.time() - started < 1
    assert driver.stats.status["aborted"] == 4
    assert [a.outcome for a in ledger.attempts] == [Outcome.INDETERMINATE] * 4
    assert driver.in_flight == 0


async def test_acknowledged_bookings_and_follow_ups_are_filed() -> None:
    workload = FlashSale([ROUTE], Random(3), "123456", users=10)

    _, ledger = await _drive(StubClient(0.002), workload, 0.3, concurrency=2)

    assert ledger.acknowledged > 0
    kinds = {(a.kind, a.outcome) for a in ledger.actions}
    # The stub refuses confirms (409) and times out cancels.
    assert kinds <= {("confirm", Outcome.REJECTED), ("cancel", Outcome.INDETERMINATE)}
    assert ("confirm", Outcome.REJECTED) in kinds


def test_outcome_of_replies() -> None:
    assert outcome_of(Failure("timeout", ""))[0] is Outcome.INDETERMINATE
    assert outcome_of(Reply(201, b"not json"))[0] is Outcome.INDETERMINATE
    assert outcome_of(Reply(409, b"{}"))[0] is Outcome.REJECTED
    assert outcome_of(Reply(408, b"{}"))[0] is Outcome.INDETERMINATE
    assert outcome_of(Reply(503, b'{"type": "overloaded"}'))[0] is Outcome.REJECTED
    assert outcome_of(Reply(503, b'{"type": "unavailable"}'))[0] is Outcome.INDETERMINATE
    assert outcome_of(Reply(500, b"{}"))[0] is Outcome.INDETERMINATE
    assert outcome_of(Reply(504, b""))[0] is Outcome.INDETERMINATE


@pytest.mark.parametrize("rate", [None, 1_000.0])
async def test_cancelling_a_run_aborts_every_request_in_flight(rate: float | None) -> None:
    loop = asyncio.get_running_loop()
    stats, ledger = Stats(loop.time()), Ledger()
    limits = Limits(deadline=stats.start + 60, concurrency=3, rate=rate)
    workload = FlashSale([ROUTE], Random(4), "123456", users=10)
    driver = Driver(StubClient(0, hang=True), workload, stats, ledger, limits)  # type: ignore[arg-type]
    running = asyncio.create_task(driver.run())
    await asyncio.sleep(0.1)

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert driver.in_flight == 0
    assert stats.status == {"aborted": 3}
    assert len(ledger.attempts) == 3

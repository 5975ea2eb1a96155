"""The crowd's scheduler: jobs never start before their time, never more than `workers` at once,
and the run ends when no job is left, or at its deadline; the crowd itself is drawn as asked."""

from __future__ import annotations

import asyncio
from random import Random

import pytest

from loadgen.config import Config
from loadgen.stats import Latency
from loadgen.waiting.config import WaitingConfig
from loadgen.waiting.crowd import EDGE_S, crowd
from loadgen.waiting.history import Kind
from loadgen.waiting.scheduler import Scheduler


async def test_jobs_start_no_sooner_than_due_and_no_more_than_workers_at_once() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(workers=3)
    started: list[tuple[float, float]] = []
    running = peak = 0

    async def job(due: float) -> None:
        nonlocal running, peak
        started.append((due, loop.time()))
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    t0 = loop.time()
    for k in range(12):
        due = t0 + 0.01 * (k % 4)
        scheduler.at(due, lambda due=due: job(due))  # type: ignore[misc]
    scheduler.at(t0 + 0.3, lambda: job(t0 + 0.3))  # long after the others: workers idle

    assert await scheduler.run(t0 + 5.0)
    assert len(started) == 13 and peak == 3
    assert all(at >= due for due, at in started)
    assert scheduler.pending == 0
    # three rounds of 20 ms jobs wait for a worker: lateness in milliseconds, not seconds
    assert 30 <= Latency.of(scheduler.lag_us).max < 1_000


async def test_a_job_may_schedule_another_and_the_run_waits_for_it() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(workers=1)
    ran: list[str] = []

    async def second() -> None:
        ran.append("second")

    async def first() -> None:
        ran.append("first")
        scheduler.at(loop.time() + 0.05, second)

    scheduler.at(loop.time(), first)

    assert await scheduler.run(loop.time() + 5.0)
    assert ran == ["first", "second"]


async def test_the_deadline_cancels_what_is_still_running() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(workers=2)
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler.at(loop.time(), forever)

    assert not await scheduler.run(loop.time() + 0.1)
    assert cancelled.is_set()


async def test_a_failing_job_ends_the_run_with_its_error() -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(workers=2)

    async def broken() -> None:
        raise RuntimeError("boom")

    scheduler.at(loop.time(), broken)
    scheduler.at(loop.time() + 30, broken)

    with pytest.raises(RuntimeError, match="boom"):
        await scheduler.run(loop.time() + 5.0)


def test_the_crowd_comes_as_configured() -> None:
    base = Config(url="http://127.0.0.1:9", jwt_secret="x" * 32, scenario="waiting-room",
                  duration=120.0)  # fmt: skip
    config = WaitingConfig(base, early=50, late=20, tight_bots=4, skip_bots=3, opens_in=10.0)

    members = crowd(config, Random(3), "000001")

    kinds = [m.kind for m in members]
    assert kinds.count(Kind.EARLY) == 50 and kinds.count(Kind.LATE) == 20
    assert kinds.count(Kind.TIGHT) == 4 and kinds.count(Kind.SKIP) == 3
    assert len({m.user for m in members}) == len(members)
    early = [m.arrives for m in members if m.kind is Kind.EARLY]
    late = [m.arrives for m in members if m.kind is Kind.LATE]
    assert all(-10.0 < t <= -EDGE_S for t in early)
    assert all(0.0 <= t <= config.late_window for t in late)
    skip = [m for m in members if m.kind is Kind.SKIP]
    assert {m.variant for m in skip} == {"none", "forged", "borrowed"}
    assert all(m.arrives < 0 for m in skip)  # they try before anyone can be admitted


def test_a_run_that_would_end_before_its_last_joiner_is_refused() -> None:
    base = Config(url="http://127.0.0.1:9", jwt_secret="x" * 32, scenario="waiting-room",
                  duration=20.0)  # fmt: skip

    with pytest.raises(ValueError, match="--duration must exceed"):
        WaitingConfig(base, opens_in=10.0, late_window=15.0)

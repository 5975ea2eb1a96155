"""Drives a workload against the server, closed loop or open loop, and files every outcome.

Closed loop: `concurrency` workers, each sends its next request when the previous one ends
(and waits out a 429's or 503's Retry-After, up to a second, as a polite client would).

Open loop: requests are scheduled at `rate` per second from the start, whatever the server
does. At most `concurrency` are in flight; when all slots are busy the scheduler waits for one,
but each request keeps its intended send time and its latency is measured from there, so a
stalled server shows up as latency instead of silently lowering the offered load (no
coordinated omission). Requests that fall behind by more than LATE_S are counted as `late`;
those whose slot never came before the deadline are counted as `unsent`.

Both stop issuing at the deadline, give requests in flight `drain` seconds to finish and then
abort them; an aborted write counts as indeterminate, like a timeout.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from loadgen.client import Answer, Reply, TicketdClient
from loadgen.ledger import Action, BookAttempt, Ledger, Outcome
from loadgen.scenarios import Book, Cancel, Confirm, Op, Query, Workload
from loadgen.stats import Schedule, Stats
from loadgen.wire import Booking, decode

LATE_S = 0.010
MAX_BACKOFF_S = 1.0

Listener = Callable[[Op, Answer, float, float], None]
"""Told of every answered or failed request: (op, answer, intended send time, end time),
loop times (the nemesis keeps the whole history this way)."""


@dataclass(frozen=True)
class Limits:
    """When to stop and how much to send at once."""

    deadline: float
    concurrency: int
    rate: float | None = None
    max_requests: int | None = None
    drain: float = 5.0


def outcome_of(answer: Answer) -> tuple[Outcome, Booking | None]:
    """How a write ended. Only a 4xx (but 408) or a 503 `overloaded` (turned away at admission,
    before any actor saw it) says it was not applied. Anything else that is not a readable 2xx
    stays open: a 500 or a 503 `unavailable` may come from a journal write that did reach
    Redis and is replayed on recovery, and no answer at all says nothing."""
    if not isinstance(answer, Reply):
        return Outcome.INDETERMINATE, None
    if answer.ok:
        booking = decode(answer.body, Booking)
        return (Outcome.ACKNOWLEDGED, booking) if booking else (Outcome.INDETERMINATE, None)
    if 400 <= answer.status < 500 and answer.status != 408:
        return Outcome.REJECTED, None
    problem = answer.problem()
    if answer.status == 503 and problem is not None and problem.slug == "overloaded":
        return Outcome.REJECTED, None
    return Outcome.INDETERMINATE, None


class Driver:
    """Sends the workload's operations within `limits`, recording into `stats` and `ledger`."""

    def __init__(
        self,
        client: TicketdClient,
        workload: Workload,
        stats: Stats,
        ledger: Ledger,
        limits: Limits,
        listener: Listener | None = None,
    ) -> None:
        self.client = client
        self.listener = listener
        self.workload = workload
        self.stats = stats
        self.ledger = ledger
        self.limits = limits
        self.schedule = Schedule()
        self.issued = 0
        self.in_flight = 0
        self._loop = asyncio.get_running_loop()

    async def run(self) -> float:
        """Drive until the deadline (or --max-requests); the load phase's end (loop time)."""
        if self.limits.rate is None:
            workers = [asyncio.create_task(self._worker()) for _ in range(self.limits.concurrency)]
            await self._finish(workers)
        else:
            await self._open_loop(self.limits.rate)
        return self._loop.time()

    def _may_send(self) -> bool:
        limit = self.limits.max_requests
        return self._loop.time() < self.limits.deadline and (limit is None or self.issued < limit)

    async def _worker(self) -> None:
        while self._may_send():
            self.issued += 1
            answer = await self._execute(self.workload.next_op(), self._loop.time())
            if isinstance(answer, Reply) and answer.status in (429, 503) and answer.retry_after:
                left = self.limits.deadline - self._loop.time()
                await asyncio.sleep(max(0.0, min(answer.retry_after, MAX_BACKOFF_S, left)))

    async def _open_loop(self, rate: float) -> None:
        start, interval = self.stats.start, 1.0 / rate
        slots = asyncio.Semaphore(self.limits.concurrency)
        tasks: set[asyncio.Task[Answer | None]] = set()
        crashed: list[BaseException] = []

        def done(task: asyncio.Task[Answer | None]) -> None:
            tasks.discard(task)
            slots.release()
            if not task.cancelled() and task.exception() is not None:
                crashed.append(task.exception() or RuntimeError("send task failed"))

        try:
            async with asyncio.timeout_at(self.limits.deadline):
                while self._may_send() and not crashed:
                    intended = start + self.issued * interval
                    if intended >= self.limits.deadline:
                        break
                    if intended > self._loop.time():
                        await asyncio.sleep(intended - self._loop.time())
                    # All slots busy: wait, but keep `intended`, so the wait counts as latency.
                    await slots.acquire()
                    lag = self._loop.time() - intended
                    if lag > LATE_S:
                        self.schedule.late += 1
                    self.schedule.max_lag_ms = max(self.schedule.max_lag_ms, round(lag * 1000, 3))
                    self.issued += 1
                    task = asyncio.create_task(self._execute(self.workload.next_op(), intended))
                    tasks.add(task)
                    task.add_done_callback(done)
        except TimeoutError:
            pass
        except BaseException:  # cancelled (Ctrl-C): no request may outlive the run
            await self._finish([], abort=list(tasks))
            raise
        if crashed:
            await self._finish([], abort=list(tasks))
            raise crashed[0]
        if self.limits.max_requests is None or self.issued < self.limits.max_requests:
            due = math.ceil((self.limits.deadline - start) * rate)
            self.schedule.unsent = max(0, due - self.issued)
        await self._finish(list(tasks))

    async def _finish(
        self, tasks: Iterable[asyncio.Task[Any]], *, abort: Iterable[asyncio.Task[Any]] = ()
    ) -> None:
        """Wait for `tasks` until deadline + drain, then abort them and `abort`; re-raise a
        crash."""
        pending = set(tasks)
        end = self.limits.deadline + self.limits.drain
        try:
            while pending and (left := end - self._loop.time()) > 0:
                done, pending = await asyncio.wait(
                    pending, timeout=left, return_when=asyncio.FIRST_EXCEPTION
                )
                for task in done:
                    if (error := task.exception()) is not None:
                        raise error
        finally:
            # Also when we are cancelled ourselves: no request may outlive the run.
            pending.update(abort)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _execute(self, op: Op, intended: float) -> Answer | None:
        self.in_flight += 1
        try:
            answer = await self._send(op)
        except asyncio.CancelledError:
            self._aborted(op)
            raise
        finally:
            self.in_flight -= 1
        ended = self._loop.time()
        self.stats.record(op.kind, answer.key, intended, ended, answered=isinstance(answer, Reply))
        self._file(op, answer)
        if self.listener is not None:
            self.listener(op, answer, intended, ended)
        return answer

    async def _send(self, op: Op) -> Answer:
        client = self.client
        match op:
            case Query():
                return await client.availability(op.route_id, op.origin, op.destination)
            case Book():
                return await client.book(op.route_id, op.user, op.request, op.key)
            case Confirm():
                return await client.confirm(op.booking_id, op.user)
            case Cancel():
                return await client.cancel(op.booking_id, op.user)

    def _file(self, op: Op, answer: Answer) -> None:
        if isinstance(op, Query):
            return
        outcome, booking = outcome_of(answer)
        if isinstance(op, Book):
            attempt = BookAttempt(op.key, op.route_id, op.user, op.request, outcome, booking)
            self.ledger.attempts.append(attempt)
            if booking is not None:
                self.workload.booked(op, booking)
        else:
            self.ledger.actions.append(Action(op.booking_id, op.kind, outcome, booking))

    def _aborted(self, op: Op) -> None:
        self.stats.count(op.kind, "aborted")
        match op:
            case Book():
                attempt = BookAttempt(
                    op.key, op.route_id, op.user, op.request, Outcome.INDETERMINATE
                )
                self.ledger.attempts.append(attempt)
            case Confirm() | Cancel():
                self.ledger.actions.append(Action(op.booking_id, op.kind, Outcome.INDETERMINATE))
            case Query():
                pass

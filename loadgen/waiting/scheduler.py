"""Timed work for a crowd: one heap of due jobs and a fixed pool of workers.

Thousands of users each wait seconds between requests; a task per user sleeping on its own
would work, but nothing would bound how many send at once. Here a job is queued on the heap
for its time, and `workers` tasks (as many as the HTTP session has connections) run the due
ones. When every worker is busy, jobs start late, never early: a user polls no sooner than
advised whatever the load, and the lateness is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable

from hdrh.histogram import HdrHistogram

Job = Callable[[], Awaitable[None]]


class Scheduler:
    """Runs jobs at their time, at most `workers` at once, until none is left or the
    deadline (loop time)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("a scheduler needs at least one worker")
        self.workers = workers
        self.lag_us = HdrHistogram(1, 3_600_000_000, 2)
        """How late jobs started, in microseconds (loadgen.stats.Latency.of reads it in ms)."""
        self._heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._ready: asyncio.Queue[tuple[float, Job]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._busy = 0
        self._loop = asyncio.get_running_loop()

    def at(self, due: float, job: Job) -> None:
        """Run `job` at loop time `due` (or as soon after as a worker is free)."""
        heapq.heappush(self._heap, (due, next(self._seq), job))
        self._wake.set()

    @property
    def pending(self) -> int:
        """Jobs waiting for their time or for a worker, and jobs running."""
        return len(self._heap) + self._ready.qsize() + self._busy

    async def run(self, deadline: float) -> bool:
        """Run until no job is left (True) or the deadline (False); jobs still running then are
        cancelled. A job's exception ends the run and is raised."""
        workers = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        try:
            async with asyncio.timeout_at(deadline):
                await self._dispatch(workers)
            return True
        except TimeoutError:
            return False
        finally:
            for task in workers:
                task.cancel()
            results = await asyncio.gather(*workers, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    raise result

    async def _dispatch(self, workers: list[asyncio.Task[None]]) -> None:
        while self.pending:
            now = self._loop.time()
            while self._heap and self._heap[0][0] <= now:
                due, _, job = heapq.heappop(self._heap)
                self._ready.put_nowait((due, job))
            if any(task.done() for task in workers):  # a job raised: stop, and say why
                return
            self._wake.clear()
            wait = self._heap[0][0] - now if self._heap else None
            # woken by a new job (it may be due sooner), a finished one, or the time
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _work(self) -> None:
        while True:
            due, job = await self._ready.get()
            self._busy += 1
            try:
                lag = max(0.0, self._loop.time() - due)
                self.lag_us.record_value(min(3_600_000_000, max(1, round(lag * 1_000_000))))
                await job()
            finally:
                self._busy -= 1
                self._wake.set()

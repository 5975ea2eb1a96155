"""The front end's event loop (server/boot/loop.py): a call stuck in a worker thread, as a Ray
call is once the GCS is gone, holds up neither the loop's teardown nor the shutdown."""

from __future__ import annotations

import asyncio
import threading
import time

import uvloop
from uvicorn._compat import asyncio_run

from server.boot.loop import DetachedExecutor, new_event_loop


def test_shutdown_returns_while_a_call_is_stuck_and_cancels_the_queued_ones() -> None:
    release = threading.Event()
    pool = DetachedExecutor(max_workers=1)
    stuck = pool.submit(release.wait)
    queued = pool.submit(time.sleep, 0)
    try:
        started = time.monotonic()
        pool.shutdown(wait=True)
        assert time.monotonic() - started < 0.5
        assert queued.cancelled() and not stuck.done()
    finally:
        release.set()


def test_the_loop_uvicorn_runs_ends_although_a_to_thread_call_never_returns() -> None:
    release = threading.Event()

    async def serve() -> str:
        # as /readyz does: give up on the call after a bound, leaving its thread behind
        try:
            await asyncio.wait_for(asyncio.to_thread(release.wait), 0.2)
        except TimeoutError:
            return "gave up"
        return "returned"

    answers: list[str] = []

    def run() -> None:
        # uvicorn's own runner: it awaits loop.shutdown_default_executor() at the end
        answers.append(asyncio_run(serve(), loop_factory=new_event_loop))

    runner = threading.Thread(target=run, daemon=True)
    try:
        runner.start()
        runner.join(3.0)
        assert not runner.is_alive(), "the loop's teardown waits for the stuck thread"
        assert answers == ["gave up"]
    finally:
        release.set()


def test_new_event_loop_is_uvloop_with_the_detached_executor() -> None:
    loop = new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
        name = loop.run_until_complete(
            loop.run_in_executor(None, lambda: threading.current_thread().name)
        )
        assert name.startswith("ticketd-blocking"), name
    finally:
        loop.close()

"""The front end's event loop: uvloop, with a default executor that never holds up exit.

`asyncio.to_thread` runs blocking calls (Ray's `cluster_resources` for /readyz, its
`get_actor` for a route's handle) on the loop's default executor. With the Ray GCS gone,
such a call never returns: each /readyz probe leaves one thread stuck in Ray, and a
plain executor's shutdown, which the loop's teardown awaits after uvicorn stops, would
wait for them for good. The front end then neither exits by itself when its Ray is lost
nor on SIGTERM. This executor's shutdown cancels what has not started and returns at
once; a thread still stuck in Ray ends with the process (`server.__main__` leaves by
`os._exit` when Ray is gone or stuck).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import uvloop


class DetachedExecutor(ThreadPoolExecutor):
    """A thread pool whose shutdown never waits for its running calls."""

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel queued calls and return; running ones finish (or not) on their own."""
        super().shutdown(wait=False, cancel_futures=True)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop with a DetachedExecutor as its default executor (uvicorn's loop=)."""
    loop = uvloop.new_event_loop()
    loop.set_default_executor(DetachedExecutor(thread_name_prefix="ticketd-blocking"))
    return loop

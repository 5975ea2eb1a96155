"""/readyz: do Redis and Ray answer? Ray's check runs one call at a time, bounded from
when it began.

With the GCS gone, `ray.cluster_resources` never returns. A new thread per probe would
pile up in the loop's default executor (6 threads on 2 cores), where every other
blocking call then waits; and each probe would take the whole bound to answer. So a
probe joins the check in flight, and one arriving after that check's bound answers at
once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray
import redis.asyncio as aredis

#: how long Ray may take to answer before /readyz says it fails
_RAY_CHECK_SECONDS = 5.0


class RayCheck:
    """Whether Ray answers `cluster_resources`, sharing one call among probes."""

    def __init__(self) -> None:
        self._call: asyncio.Future[Any] | None = None
        self._began = 0.0

    async def answers(self) -> bool:
        """Ray's answer within the bound of the call's start; TimeoutError otherwise."""
        if self._call is None or self._call.done():
            self._call = asyncio.ensure_future(asyncio.to_thread(ray.cluster_resources))
            # its error is read, whoever still waits (none, once every probe gave up)
            self._call.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._began = time.monotonic()
        left = _RAY_CHECK_SECONDS - (time.monotonic() - self._began)
        if left <= 0:
            raise TimeoutError
        return bool(await asyncio.wait_for(asyncio.shield(self._call), left))


class Readiness:
    """Whether this front end's Redis and Ray answer (for /readyz)."""

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self._ray = RayCheck()  # one in flight at a time

    async def check(self) -> dict[str, str]:
        """ "ok" or "failing: <why>" for each of redis and ray."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.client.ping(), 2)
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"failing: {type(exc).__name__}"
        try:
            ok = ray.is_initialized() and await self._ray.answers()
            checks["ray"] = "ok" if ok else "failing: not connected"
        except Exception as exc:
            checks["ray"] = f"failing: {type(exc).__name__}"
        return checks

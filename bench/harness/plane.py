"""Blocking calls to a route actor over its data plane, for benchmarks that drive one
actor directly (no HTTP front end)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray

from actors.plane import protocol


class PlaneCaller:
    """Blocking calls over a route actor's data plane (what a front end sends), with the
    address looked up through Ray and looked up again after a restart."""

    def __init__(self, secret: str, handle: Any) -> None:
        self.secret = secret
        from server.dispatch.link import Link

        self._link_class = Link
        self.handle = handle
        self.loop = asyncio.new_event_loop()
        self.link: Any = None

    def _connect(self) -> Any:
        if self.link is None or not self.link.open:
            where = ray.get(self.handle.address.remote(), timeout=60)
            self.link = self.loop.run_until_complete(
                self._link_class.connect(where, self.secret, unix=True)
            )
        return self.link

    def submit(self, payload: bytes) -> bytes:
        """One request; raises protocol.PlaneError (or RayActorError) if it was not answered."""
        link = self._connect()
        raw: bytes = self.loop.run_until_complete(link.request(protocol.OP_SUBMIT, payload))
        return raw

    def pipeline(self, payloads: list[bytes], in_flight: int) -> list[tuple[float, bytes]]:
        """Send with up to in_flight outstanding; (latency, answer) per request."""
        link = self._connect()

        async def run() -> list[tuple[float, bytes]]:
            out: list[tuple[float, bytes]] = []
            pending: list[tuple[float, Any]] = []
            for payload in payloads:
                pending.append((time.perf_counter(), link.request(protocol.OP_SUBMIT, payload)))
                if len(pending) >= in_flight:
                    sent, fut = pending.pop(0)
                    raw = await fut
                    out.append((time.perf_counter() - sent, raw))
            for sent, fut in pending:
                raw = await fut
                out.append((time.perf_counter() - sent, raw))
            return out

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

"""/readyz with a Ray that does not answer (server/dispatch/readiness.py): one check in
flight, never a thread per probe, and probes after the first answer at once."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest
import ray

from server.dispatch import readiness


async def test_a_stuck_ray_check_is_not_repeated_and_later_probes_answer_at_once(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    calls: list[float] = []
    real = ray.cluster_resources

    def stuck() -> dict[str, Any]:
        # as with the GCS gone: the call does not return (here: until released)
        calls.append(time.monotonic())
        release.wait(30)
        return real()

    monkeypatch.setattr(readiness.ray, "cluster_resources", stuck)
    monkeypatch.setattr(readiness, "_RAY_CHECK_SECONDS", 0.5)
    try:
        started = time.monotonic()
        first = await api.get("/readyz")
        first_took = time.monotonic() - started
        started = time.monotonic()
        again = [await api.get("/readyz") for _ in range(3)]
        again_took = time.monotonic() - started
    finally:
        release.set()

    assert first.status_code == 503
    assert first.json()["checks"]["ray"] == "failing: TimeoutError"
    assert 0.4 <= first_took < 2.0, first_took
    assert [r.status_code for r in again] == [503, 503, 503]
    assert again_took < 0.5, again_took
    assert len(calls) == 1, "a probe started a second check while one was out"
    # once the check has come back, the next probe asks Ray afresh
    deadline = time.monotonic() + 5
    while (r := await api.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert r.status_code == 200, r.text
    assert len(calls) == 2

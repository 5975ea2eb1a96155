"""A sale's queue survives its processes: a front-end worker SIGKILLed, the embedded
Redis (which holds the queue) SIGKILLed, and the whole server stopped and started again
on its data directory. No place is lost or given twice, and tickets and admissions made
before any of it are honoured after."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.http import booking_body, coach, people, route_body
from support.process import SECRET, Server, redis_servers_on, start_server, workers_of

from server.api.auth import mint

__all__ = ["start_server"]  # a fixture

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

EARLY, LATE = 40, 20
#: how long a killed process may take to be replaced and answer again
HEALS_WITHIN = 60.0


def _auth(user: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, admin)}"}


async def _join(api: httpx.AsyncClient, sale_id: str, user: str) -> dict[str, Any]:
    """The user's answer to joining, retried while the server heals (a 503, or a
    connection cut by a killed worker: the join may have landed, joining again is safe)."""
    deadline = time.monotonic() + HEALS_WITHIN
    while True:
        try:
            r = await api.post(f"/v1/sales/{sale_id}/queue", headers=_auth(user))
            if r.status_code == 200:
                got: dict[str, Any] = r.json()
                return got
            assert r.status_code == 503, r.text
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{user} could not join"
        await asyncio.sleep(0.2)


async def _places(api: httpx.AsyncClient, sale_id: str, users: list[str]) -> dict[str, int]:
    answers = await asyncio.gather(*(_join(api, sale_id, u) for u in users))
    return {u: a["place"] for u, a in zip(users, answers, strict=True)}


async def _opened(api: httpx.AsyncClient, sale_id: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        r = await api.get(f"/v1/sales/{sale_id}", headers=_auth("ops", admin=True))
        if r.status_code == 200 and r.json()["state"] == "open" and r.json()["queued"] >= EARLY:
            return
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.2)


def _replaced(server: Server, victim: int) -> None:
    deadline = time.monotonic() + HEALS_WITHIN
    while time.monotonic() < deadline:
        now = workers_of(server)
        if len(now) == 2 and victim not in now:
            return
        time.sleep(0.2)
    pytest.fail(f"worker {victim} was not replaced:\n{server.log_tail()}")


def _redis_restarted(data_dir: Path, victim: int) -> None:
    deadline = time.monotonic() + HEALS_WITHIN
    while time.monotonic() < deadline:
        now = redis_servers_on(data_dir)
        if now and victim not in now:
            return
        time.sleep(0.2)
    pytest.fail("the embedded Redis was not restarted")


async def test_no_place_is_lost_or_doubled_when_a_worker_redis_or_the_server_restarts(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    data_dir = (tmp_path / "data").resolve()
    server = start_server(data_dir, TICKETD_WORKERS="2")
    early = [f"early{n}" for n in range(EARLY)]
    late = [f"late{n}" for n in range(LATE)]
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api:
        route = route_body("Q1", coaches=[coach("01", "second", 20, "ABCDF")])
        r = await api.post("/v1/routes", json=route, headers=_auth("ops", admin=True))
        assert r.status_code == 201, r.text
        rid = r.json()["route_id"]
        opens_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
        sale = {"routes": [rid], "opens_at": opens_at.isoformat(), "admit_per_second": 1}
        r = await api.post("/v1/sales", json=sale, headers=_auth("ops", admin=True))
        assert r.status_code == 201, r.text
        sid = r.json()["sale_id"]

        # the pre-queue, with a worker killed while people join
        joining = asyncio.gather(*(_join(api, sid, u) for u in early))
        victim = workers_of(server)[0]
        os.kill(victim, signal.SIGKILL)
        assert all(a["state"] == "not-open" for a in await joining)
        _replaced(server, victim)

        await _opened(api, sid)
        # the draw is in Redis: kill it, and the places drawn are still there
        places = await _places(api, sid, early)
        (redis,) = redis_servers_on(data_dir)
        os.kill(redis, signal.SIGKILL)
        _redis_restarted(data_dir, redis)
        for user in late:  # one after another: in arrival order
            places[user] = (await _join(api, sid, user))["place"]
        assert sorted(places.values()) == list(range(1, EARLY + LATE + 1)), places
        assert [places[u] for u in late] == list(range(EARLY + 1, EARLY + LATE + 1))
        assert await _places(api, sid, early + late) == places

        # the first in line is admitted (one a second) and keeps their admission
        first = min(places, key=places.__getitem__)
        deadline = time.monotonic() + 30
        while (answer := await _join(api, sid, first))["state"] != "admitted":
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.3)
        admission, ticket = answer["admission"], answer["ticket"]
    assert server.stop() == 0, server.log_tail()
    assert redis_servers_on(data_dir) == []

    again = start_server(data_dir, TICKETD_WORKERS="2")
    async with httpx.AsyncClient(base_url=again.url, timeout=30) as api:
        assert await _places(api, sid, early + late) == places
        # a ticket and an admission made before the restart are honoured after it
        polled = await api.get(
            f"/v1/sales/{sid}/queue", headers={**_auth(first), "Queue-Ticket": ticket}
        )
        assert polled.status_code == 200 and polled.json()["place"] == places[first]
        headers = {**_auth(first), "Admission": admission, "Idempotency-Key": "q1"}
        trip = booking_body("A", "D", "second", people("p1"))
        r = await api.post(f"/v1/routes/{rid}/bookings", json=trip, headers=headers)
        assert r.status_code == 201, r.text
        headers = {**_auth(late[-1]), "Idempotency-Key": "q2"}
        r = await api.post(f"/v1/routes/{rid}/bookings", json=trip, headers=headers)
        assert r.status_code == 403 and r.json()["type"].endswith("not-admitted"), r.text

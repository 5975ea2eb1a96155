"""Several front-end workers per node (server/boot/workers.py), as `make run` starts them:
one port, every worker serving, a killed one replaced, nothing left after a stop."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.http import booking_body, coach, people, route_body
from support.process import (
    SECRET,
    Server,
    alive,
    descendants,
    redis_servers_on,
    start_server,
    workers_of,
)

from server.api.auth import mint

__all__ = ["start_server"]  # a fixture

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _auth(user: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, admin)}"}


def _served_by(url: str, connections: int = 16) -> set[int]:
    """The worker pids that answered, one request on each of several new connections."""
    pids = set()
    for _ in range(connections):
        with httpx.Client(base_url=url, timeout=10) as client:  # a new connection each
            r = client.get("/healthz")
            assert r.status_code == 200, r.text
            pids.add(r.json()["pid"])
    return pids


def test_workers_share_the_port_and_a_killed_one_is_replaced(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    server = start_server(tmp_path / "data", TICKETD_WORKERS="2")
    workers = workers_of(server)
    assert len(workers) == 2, descendants(server.proc.pid)
    # the kernel spreads new connections over both (SO_REUSEPORT)
    assert _served_by(server.url) == set(workers)

    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post(
            "/v1/routes",
            json=route_body("W1", coaches=[coach("01", "second", 2, "A")]),
            headers=_auth("ops", admin=True),
        )
        assert r.status_code == 201, r.text
        rid = r.json()["route_id"]
        body = booking_body("A", "D", "second", people("p0"))
        first = client.post(
            f"/v1/routes/{rid}/bookings",
            json=body,
            headers={**_auth("u0"), "Idempotency-Key": "k0"},
        )
        assert first.status_code == 201, first.text

    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = workers_of(server)
        if len(now) == 2 and victim not in now:
            try:
                if _served_by(server.url) == set(now):
                    break
            except (httpx.TransportError, AssertionError):
                pass
        time.sleep(0.5)
    else:
        pytest.fail(f"the killed worker was not replaced:\n{server.log_tail()}")
    assert server.proc.poll() is None

    # every worker answers the first answer to a retry, whichever the client reaches
    for _ in range(6):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            again = client.post(
                f"/v1/routes/{rid}/bookings",
                json=body,
                headers={**_auth("u0"), "Idempotency-Key": "k0"},
            )
            assert (again.status_code, again.content) == (201, first.content)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_twice_leaves_no_process_behind(
    start_server: Callable[..., Server], tmp_path: Path, sig: signal.Signals
) -> None:
    data_dir = (tmp_path / "data").resolve()
    server = start_server(data_dir, TICKETD_WORKERS="2")
    family = list(descendants(server.proc.pid))
    assert len(workers_of(server)) == 2 and redis_servers_on(data_dir)
    # Ctrl-C under make: the signal can arrive twice
    server.proc.send_signal(sig)
    time.sleep(0.2)
    server.proc.send_signal(sig)
    assert server.proc.wait(timeout=40) == 0, server.log_tail()
    deadline = time.monotonic() + 10
    while alive(family) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: argv for pid, argv in descendants(1).items() if pid in alive(family)}
    assert left == {}, left
    assert redis_servers_on(data_dir) == []

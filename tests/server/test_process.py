"""`python -m server` over a real socket: graceful SIGTERM, and a restart serves every booking."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.http import booking_body, coach, people, route_body

from server.api.auth import mint

REPO = Path(__file__).resolve().parents[2]
SECRET = "process-test-secret-0123456789abcdef-0123"
READY_WITHIN = 60.0
EXIT_WITHIN = 20.0


class Server:
    """One `python -m server` child on a free port."""

    def __init__(self, data_dir: Path, log_path: Path, **extra: str) -> None:
        self.port = _free_port()
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETD_", "RAY_ADDRESS"))}
        env.update(
            TICKETD_PORT=str(self.port),
            TICKETD_DATA_DIR=str(data_dir),
            TICKETD_JWT_SECRET=SECRET,
            TICKETD_LOG_JSON="1",
        )
        env.update(extra)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server"], cwd=REPO, env=env, stdout=log, stderr=log
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        with httpx.Client(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"server exited early:\n{self.log_tail()}"
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        pytest.fail(f"server not ready within {READY_WITHIN:g} s:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within {EXIT_WITHIN:g} s of SIGTERM:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=EXIT_WITHIN)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start_server(data_dir, **env) -> a running server; every one is stopped at the end."""
    started: list[Server] = []

    def start(data_dir: Path, **env: str) -> Server:
        server = Server(data_dir, tmp_path / f"server-{len(started)}.log", **env)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _redis_servers_on(data_dir: Path) -> list[int]:
    """Pids of redis/valkey servers whose --dir lies in data_dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = Path(argv[0].decode(errors="replace")).name
        if name in ("redis-server", "valkey-server") and str(data_dir).encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


def _auth(user: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, admin)}"}


def _booking_state(client: httpx.Client, made: dict[str, str]) -> dict[str, Any]:
    out = {}
    for bid, user in made.items():
        r = client.get(f"/v1/bookings/{bid}", headers=_auth(user))
        assert r.status_code == 200, r.text
        out[bid] = r.json()
    return out


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_sigterm_stops_cleanly_and_a_restart_serves_every_acknowledged_booking(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    data_dir = (tmp_path / "data").resolve()
    server = start_server(data_dir)
    coaches = [coach("01", "business", 1, "A"), coach("02", "second", 3, "ABCD")]
    route = route_body("P1", coaches=coaches)
    made: dict[str, str] = {}  # booking id -> its user
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/v1/routes", json=route, headers=_auth("ops", admin=True))
        assert r.status_code == 201, r.text
        rid = r.json()["route_id"]
        first_replies: dict[str, httpx.Response] = {}
        for n in range(8):
            body = booking_body("A", "C" if n % 2 else "D", "second", people(f"p{n}"))
            headers = {**_auth(f"u{n}"), "Idempotency-Key": f"k{n}"}
            r = client.post(f"/v1/routes/{rid}/bookings", json=body, headers=headers)
            assert r.status_code == 201, r.text
            made[r.json()["booking_id"]] = f"u{n}"
            first_replies[f"k{n}"] = r
        for n, body in enumerate(
            [
                booking_body("A", "B", "business", people("b0")),
                booking_body("A", "B", "business", people("b1"), waitlist=True),
            ]
        ):
            headers = {**_auth(f"b{n}"), "Idempotency-Key": f"b{n}"}
            r = client.post(f"/v1/routes/{rid}/bookings", json=body, headers=headers)
            assert r.status_code == (201, 202)[n], r.text
            made[r.json()["booking_id"]] = f"b{n}"
        ids = list(made)
        assert client.post(f"/v1/bookings/{ids[0]}/confirm", headers=_auth("u0")).status_code == 200
        assert client.post(f"/v1/bookings/{ids[1]}/confirm", headers=_auth("u1")).status_code == 200
        assert client.delete(f"/v1/bookings/{ids[2]}", headers=_auth("u2")).status_code == 200
        before = _booking_state(client, made)
        listed = client.get(f"/v1/routes/{rid}/bookings", headers=_auth("ops", admin=True))
        assert listed.status_code == 200
        free = client.get(f"/v1/routes/{rid}/availability", params={"from": "A", "to": "D"}).json()
    assert {b["status"] for b in before.values()} == {
        "held",
        "confirmed",
        "cancelled",
        "waitlisted",
    }

    assert server.stop() == 0, server.log_tail()
    assert _redis_servers_on(data_dir) == []
    ready = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if line.startswith("{") and "ticketd ready" in line
    ]
    assert ready and ready[0]["port"] == server.port  # TICKETD_LOG_JSON=1: JSON lines

    again = start_server(data_dir)
    with httpx.Client(base_url=again.url, timeout=30) as client:
        assert _booking_state(client, made) == before
        r = client.get(f"/v1/routes/{rid}/bookings", headers=_auth("ops", admin=True))
        assert r.status_code == 200
        assert sorted(r.json()["bookings"], key=lambda b: b["booking_id"]) == sorted(
            listed.json()["bookings"], key=lambda b: b["booking_id"]
        )
        r = client.get(f"/v1/routes/{rid}/availability", params={"from": "A", "to": "D"})
        assert r.json() == free
        # a client retrying across the restart gets its first answer, not a second booking
        body = booking_body("A", "C", "second", people("p3"))
        r = client.post(
            f"/v1/routes/{rid}/bookings",
            json=body,
            headers={**_auth("u3"), "Idempotency-Key": "k3"},
        )
        assert (r.status_code, r.content) == (201, first_replies["k3"].content)
    assert again.stop() == 0, again.log_tail()
    assert _redis_servers_on(data_dir) == []


def test_unset_ray_address_starts_a_ray_of_its_own_despite_a_dead_clusters_leftover(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # a `ray start` that crashed leaves <RAY_TMPDIR>/ray/ray_current_cluster behind; a plain
    # ray.init() would join the address it names and wait two minutes on it. 192.0.2.2 is
    # TEST-NET-1: nothing answers there. Short: Ray's unix socket paths live under it.
    ray_tmp = Path(tempfile.mkdtemp(prefix="tkdp-", dir="/tmp"))
    try:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text("192.0.2.2:37727\n")
        server = start_server(tmp_path / "data", RAY_TMPDIR=str(ray_tmp))
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get("/readyz").json()["checks"]["ray"] == "ok"
        assert server.stop() == 0
        connected = [json.loads(line) for line in server.log_path.read_text().splitlines()
                     if '"ray connected"' in line]  # fmt: skip
        assert connected and connected[0]["address"] == "local", server.log_tail()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)

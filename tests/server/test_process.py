"""`python -m server` over a real socket: graceful SIGTERM, and a restart serves every booking."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.http import booking_body, coach, people, route_body
from support.process import SECRET, Server, redis_servers_on, start_server

from server.api.auth import mint

__all__ = ["start_server"]  # a fixture


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
    assert redis_servers_on(data_dir) == []
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
    assert redis_servers_on(data_dir) == []


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

"""Schemathesis over a real socket: the seat map and the operator's JSON answer as
/openapi.json says."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from conftest import JWT_SECRET
from console_live import serve
from hypothesis import HealthCheck, settings
from support.schema import auth_for, empty_trip_refused

from server.api import openapi
from server.api.auth import mint

schema = schemathesis.openapi.from_dict(json.loads(openapi.document()))
TRAIN = f"CS{time.time_ns() % 10**9}"
ADMIN = {"Authorization": f"Bearer {mint(JWT_SECRET, 'ops', True)}"}


@pytest.fixture(scope="module")
def live_url(redis_url: str, ray_local: None, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:  # fmt: skip
    with serve(redis_url, tmp_path_factory.mktemp("console-schema")) as url:
        coaches = [{"number": "01", "class": "second", "rows": 1, "letters": "AB"}]
        # a train of this run only: a route actor outlives the test
        route = {"train": TRAIN, "date": "2026-12-01", "stations": ["A", "B", "C"],
                 "coaches": coaches}  # fmt: skip
        assert httpx.post(url + "/v1/routes", json=route, headers=ADMIN).status_code in (200, 201)
        yield url


@schema.include(path_regex=r"^/v1/(routes/\{route_id\}/seats|admin/)", method="GET").parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_console_endpoints_conform_to_their_openapi_document(case: schemathesis.Case,
                                                             live_url: str) -> None:  # fmt: skip
    headers = auth_for(case, ADMIN)
    if empty_trip_refused(case, live_url, headers):
        return
    case.call_and_validate(base_url=live_url, headers=headers)


def test_seats_of_a_known_route_conform(live_url: str) -> None:
    r = httpx.get(f"{live_url}/v1/routes/{TRAIN}-20261201/seats", params={"from": "A", "to": "C"})
    assert r.status_code == 200, r.text
    assert r.json()["coaches"] == [
        {"number": "01", "class": "second", "rows": 1, "letters": "AB", "taken": []}
    ]


@pytest.mark.parametrize("path", ["/", "/ops", f"/routes/{TRAIN}-20261201", "/routes/NOPE",
                                  "/console/console.css", "/console/seatmap.js"])  # fmt: skip
def test_pages_are_served_from_this_origin_only(live_url: str, path: str) -> None:
    r = httpx.get(live_url + path)
    assert r.status_code == 200, r.text
    if path.startswith(("/routes", "/ops")) or path == "/":
        assert r.headers["content-security-policy"].startswith("default-src 'self'")
        assert "http" not in r.text.replace(live_url, "").split("<body>")[0]

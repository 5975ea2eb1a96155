"""Schemathesis over a real socket: the read endpoints answer as /openapi.json says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from conftest import JWT_SECRET
from hypothesis import HealthCheck, settings
from support.live import live_app
from support.schema import auth_for

from server.api import openapi
from server.api.auth import mint

schema = schemathesis.openapi.from_dict(json.loads(openapi.document()))
AUTH = {"Authorization": f"Bearer {mint(JWT_SECRET, 'schemathesis')}"}


@pytest.fixture(scope="module")
def live_url(redis_url: str, ray_local: None, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:  # fmt: skip
    """A live ticketd with one route to read."""
    from server.settings import Settings

    data: Path = tmp_path_factory.mktemp("schema-data")
    s = Settings(redis_url=redis_url, jwt_secret=JWT_SECRET, data_dir=data)
    with live_app(s) as url:
        admin = {"Authorization": f"Bearer {mint(JWT_SECRET, 'ops', True)}"}
        coaches = [{"number": "01", "class": "second", "rows": 1, "letters": "AB"}]
        route = {
            "train": "S1",
            "date": "2026-12-01",
            "stations": ["A", "B", "C"],
            "coaches": coaches,
        }
        assert httpx.post(url + "/v1/routes", json=route, headers=admin).status_code in (200, 201)
        yield url


@schema.include(path_regex="^/v1/(search|bookings|routes)$", method="GET").parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_read_endpoints_conform_to_their_openapi_document(case: schemathesis.Case, live_url: str
                                                          ) -> None:  # fmt: skip
    query = case.query or {}
    same = query.get("from") is not None and query.get("from") == query.get("to")
    headers = auth_for(case, AUTH)
    if case.path == "/v1/search" and case.method.upper() == "GET" and same and headers:
        # a trip from a station to itself: the one documented 422 for schema-valid input
        response = case.call(base_url=live_url, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["type"] in ("bad-trip", "validation"), response.text
        return
    case.call_and_validate(base_url=live_url, headers=headers)

"""The flash sale's hot paths (server/api/hot.py) bypass Starlette's stack and answer as
it would: the same endpoint, its problems, its metrics and the echoed request id; any
other path, or a malformed one, goes on to Starlette."""

from __future__ import annotations

import httpx
import pytest
from support.http import Ids, Tokens, create_route, route_body, train_of
from support.sales import create_sale

from server.api import bookings, sales
from server.api.hot import _match
from server.metrics import REGISTRY


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "param"),
    [
        ("POST", "/v1/routes/G1-20261201/bookings", bookings.BOOK, "G1-20261201"),
        ("POST", "/v1/sales/S1/queue", sales.JOIN, "S1"),
        ("GET", "/v1/sales/S1/queue", sales.POLL, "S1"),
        ("GET", "/v1/routes/G1-20261201/bookings", None, None),  # the admin list
        ("PUT", "/v1/sales/S1/queue", None, None),
        ("GET", "/v1/sales//queue", None, None),
        ("GET", "/v1/sales/S1/x/queue", None, None),
        ("GET", "/v1/sales/S1", None, None),
    ],
)
def test_only_the_hot_paths_are_taken_ahead_of_starlette(
    method: str, path: str, endpoint: object, param: str | None
) -> None:
    found = _match(method, path)
    if endpoint is None:
        assert found is None
    else:
        assert found is not None and (found[0], found[2]) == (endpoint, param)


def _count(endpoint: str, method: str, status: str) -> float:
    labels = {"endpoint": endpoint, "method": method, "status": status}
    return REGISTRY.get_sample_value("ticketd_http_requests_total", labels) or 0.0


async def test_queue_answers_taken_ahead_of_starlette_echo_the_request_id_and_are_counted(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin, alice = token("ops", admin=True), token("alice")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    sid = (await create_sale(api, admin, [rid], opens_in=600))["sale_id"]
    joins, polls = _count("join_queue", "POST", "200"), _count("poll_queue", "GET", "429")
    headers = {"Authorization": alice, "X-Request-ID": "req-join-1"}
    joined = await api.post(f"/v1/sales/{sid}/queue", headers=headers)
    assert joined.status_code == 200 and joined.headers["x-request-id"] == "req-join-1"
    ticket = {"Queue-Ticket": joined.json()["ticket"]}
    first = await api.get(f"/v1/sales/{sid}/queue", headers={**headers, **ticket})
    assert first.status_code == 200, first.text
    again = await api.get(f"/v1/sales/{sid}/queue", headers={**headers, **ticket})
    assert again.status_code == 429 and again.headers["retry-after"] == "1", again.text
    assert again.headers["x-request-id"] == "req-join-1"
    assert _count("join_queue", "POST", "200") == joins + 1
    assert _count("poll_queue", "GET", "429") == polls + 1
    # a problem from the core, mapped by the guard as Starlette's way in maps it
    missing = await api.get("/v1/sales/Snope/queue", headers={"Authorization": alice})
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(
        "application/problem+json"
    )
    unsigned = await api.post(f"/v1/sales/{sid}/queue")
    assert unsigned.status_code == 401, unsigned.text

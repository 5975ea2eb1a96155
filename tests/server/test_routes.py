"""Route administration, route reads, availability and the operational endpoints over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import Any

import httpx
import pytest
from support.http import (
    PROBLEM,
    Ids,
    Tokens,
    admin_list,
    assert_problem,
    availability,
    book,
    booking_body,
    coach,
    create_route,
    expected_free,
    people,
    route_body,
    train_of,
)

from server.app import HTTP_ROUTES

# ---- POST /v1/routes ----------------------------------------------------------------------


async def test_create_route_is_201_then_200_when_identical_and_409_when_different(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = {"Authorization": token("ops", admin=True)}
    body = route_body(train_of(route_id_factory))
    first = await api.post("/v1/routes", json=body, headers=admin)
    assert first.status_code == 201, first.text
    assert first.headers["content-type"] == "application/json"
    created = first.json()
    assert created == {**body, "route_id": f"{body['train']}-20261201"}

    again = await api.post("/v1/routes", json=body, headers=admin)
    assert again.status_code == 200, again.text
    assert again.json() == created

    different = {**body, "stations": ["A", "B", "C", "X"]}
    r = await api.post("/v1/routes", json=different, headers=admin)
    problem = assert_problem(r, 409, "route-conflict")
    assert problem["route_id"] == created["route_id"]
    # the first definition stands
    r = await api.get(f"/v1/routes/{created['route_id']}")
    assert r.json() == created


async def test_create_route_needs_an_admin_token(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    body = route_body(train_of(route_id_factory))
    r = await api.post("/v1/routes", json=body)
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = await api.post("/v1/routes", json=body, headers={"Authorization": token("mallory")})
    assert_problem(r, 403, "forbidden")
    r = await api.get(f"/v1/routes/{body['train']}-20261201")
    assert_problem(r, 404, "not-found")


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


_BASE = route_body("V1")
_INVALID_ROUTES: dict[str, Any] = {
    "duplicate stations": _with(_BASE, stations=["A", "B", "A"]),
    "one station": _with(_BASE, stations=["A"]),
    "blank station": _with(_BASE, stations=["A", "   "]),
    "empty station": _with(_BASE, stations=["A", ""]),
    "stations not a list": _with(_BASE, stations="ABC"),
    "not a calendar date": _with(_BASE, date="2026-02-30"),
    "month 13": _with(_BASE, date="2026-13-01"),
    "date without dashes": _with(_BASE, date="20261201"),
    "lower-case train": _with(_BASE, train="g101"),
    "train too long": _with(_BASE, train="G" * 13),
    "rows 0": _with(_BASE, coaches=[coach("01", "second", 0, "AB")]),
    "rows 100": _with(_BASE, coaches=[coach("01", "second", 100, "AB")]),
    "rows fractional": _with(_BASE, coaches=[coach("01", "second", 2.5, "AB")]),
    "rows boolean": _with(_BASE, coaches=[coach("01", "second", True, "AB")]),
    "rows huge": _with(_BASE, coaches=[coach("01", "second", 10**40, "AB")]),
    "no coaches": _with(_BASE, coaches=[]),
    "duplicate coach numbers": _with(
        _BASE, coaches=[coach("01", "second", 1, "AB"), coach("01", "first", 1, "AB")]
    ),
    "duplicate seat letters": _with(_BASE, coaches=[coach("01", "second", 1, "AA")]),
    "upper-case class": _with(_BASE, coaches=[coach("01", "Second", 1, "AB")]),
    "too many seats": _with(
        _BASE, coaches=[coach(f"{n:02d}", "s", 99, "ABCDEFGHJK") for n in range(40)]
    ),
    "unknown field": _with(_BASE, price=100),
    "route_id given": _with(_BASE, route_id="V1-20261201"),
    "unknown coach field": _with(_BASE, coaches=[{**coach("01", "second", 1, "AB"), "vip": True}]),
    "missing coaches": {k: v for k, v in _BASE.items() if k != "coaches"},
    "not an object": [_BASE],
    "null": None,
}


@pytest.mark.parametrize("case", _INVALID_ROUTES, ids=list(_INVALID_ROUTES))
async def test_invalid_route_definitions_are_422_and_create_nothing(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids, case: str
) -> None:
    body = _INVALID_ROUTES[case]
    train = train_of(route_id_factory)
    if isinstance(body, dict) and body.get("train") == "V1":
        body = {**body, "train": train}
    # as raw JSON: httpx would send json=None as no body at all
    headers = {"Authorization": token("ops", True), "Content-Type": "application/json"}
    r = await api.post("/v1/routes", content=json.dumps(body), headers=headers)
    assert_problem(r, 422, "validation")
    r = await api.get(f"/v1/routes/{train}-20261201")
    assert_problem(r, 404, "not-found")


# ---- GET /v1/routes, GET /v1/routes/{id} --------------------------------------------------


async def test_created_routes_are_listed_and_readable_without_a_token(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    bodies = [route_body(train_of(route_id_factory)) for _ in range(2)]
    ids = [await create_route(api, admin, b) for b in bodies]
    listed = {}
    params: dict[str, str] = {}
    while True:  # page by page: the list is paginated (tests/server/test_route_pages.py)
        r = await api.get("/v1/routes", params=params)
        assert r.status_code == 200, r.text
        listed.update({route["route_id"]: route for route in r.json()["routes"]})
        if r.json()["next_cursor"] is None:
            break
        params = {"cursor": r.json()["next_cursor"]}
    for route_id, body in zip(ids, bodies, strict=True):
        assert listed[route_id] == {**body, "route_id": route_id}
        r = await api.get(f"/v1/routes/{route_id}")
        assert r.status_code == 200, r.text
        assert r.json() == listed[route_id]


@pytest.mark.parametrize(
    "route_id", ["NOPE0-20261201", "nonsense", "G101-2026120", "%E2%98%83", "A" * 3000]
)
async def test_unknown_route_is_404(api: httpx.AsyncClient, route_id: str) -> None:
    assert_problem(await api.get(f"/v1/routes/{route_id}"), 404, "not-found")
    r = await api.get(f"/v1/routes/{route_id}/availability", params={"from": "A", "to": "B"})
    assert_problem(r, 404, "not-found")


# ---- availability -------------------------------------------------------------------------


async def test_availability_is_exact_per_class_for_every_trip(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    route = route_body(train_of(route_id_factory))
    rid = await create_route(api, admin, route)
    assert await availability(api, rid, "A", "D") == {"business": 2, "second": 4}

    for frm, to, who in [("A", "B", "p1"), ("C", "D", "p2"), ("B", "D", "p3"), ("A", "B", "p4")]:
        r = await book(api, rid, token(who), booking_body(frm, to, "second", people(who)))
        assert r.status_code == 201, r.text
    r = await book(api, rid, token("p5"), booking_body("A", "D", "business", people("p5")))
    assert r.status_code == 201, r.text

    bookings = await admin_list(api, rid, admin)
    stations = route["stations"]
    for i, frm in enumerate(stations):
        for to in stations[i + 1 :]:
            got = await availability(api, rid, frm, to)
            assert got == expected_free(route, bookings, frm, to), (frm, to)
    # whatever the seat choice, these follow from the bookings alone
    assert await availability(api, rid, "A", "B") == {"business": 1, "second": 2}
    assert await availability(api, rid, "B", "C") == {"business": 1, "second": 3}
    assert await availability(api, rid, "C", "D") == {"business": 1, "second": 2}

    # a cancel shows at once on this front end (it reads its own writes)
    cancelled = await api.delete(
        f"/v1/bookings/{r.json()['booking_id']}", headers={"Authorization": token("p5")}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert (await availability(api, rid, "A", "D"))["business"] == 2


@pytest.mark.parametrize(
    ("params", "type_"),
    [
        ({}, "validation"),
        ({"from": "A"}, "validation"),
        ({"to": "B"}, "validation"),
        ({"from": "", "to": "B"}, "validation"),
        ({"from": "A", "to": "Z"}, "unknown-station"),
        ({"from": "Nowhere", "to": "B"}, "unknown-station"),
        ({"from": "a", "to": "B"}, "unknown-station"),
        ({"from": "C", "to": "A"}, "bad-trip"),
        ({"from": "B", "to": "B"}, "bad-trip"),
    ],
)
async def test_bad_availability_queries_are_422(
    api: httpx.AsyncClient,
    token: Tokens,
    route_id_factory: Ids,
    params: dict[str, str],
    type_: str,
) -> None:
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    r = await api.get(f"/v1/routes/{rid}/availability", params=params)
    assert_problem(r, 422, type_)


# ---- operations ---------------------------------------------------------------------------


async def test_healthz_and_readyz_answer_ok_with_checks(api: httpx.AsyncClient) -> None:
    r = await api.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "pid": os.getpid(), "worker": None}
    r = await api.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok", "checks": {"redis": "ok", "ray": "ok"}}


async def test_metrics_count_requests_and_batches(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    r = await book(api, rid, token("m1"), booking_body("A", "B", "second", people("m1")))
    assert r.status_code == 201, r.text
    await api.get("/v1/routes/NOPE1-20261201")

    r = await api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE ticketd_http_requests_total counter" in text
    assert "# TYPE ticketd_batch_size histogram" in text

    def sample(pattern: str) -> float:
        found = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
        assert found is not None, pattern
        return float(found.group(1))

    labels = r'\{endpoint="get_route",method="GET",status="404"\}'
    assert sample(f"ticketd_http_requests_total{labels}") >= 1
    assert sample(r'ticketd_http_requests_total\{endpoint="book",method="POST",status="201"\}') >= 1
    assert sample("ticketd_batch_size_count") >= 1


# ---- /openapi.json --------------------------------------------------------------------------

#: operations anyone may call; every other one needs a bearer token
_PUBLIC = {
    ("get", "/v1/routes"),
    ("get", "/v1/routes/{route_id}"),
    ("get", "/v1/routes/{route_id}/availability"),
    ("get", "/v1/search"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    # the web console (server/console): its pages, files and seat map
    ("get", "/"),
    ("get", "/routes/{route_id}"),
    ("get", "/ops"),
    ("get", "/console/{name}"),
    ("get", "/v1/routes/{route_id}/seats"),
}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_openapi_documents_every_endpoint_with_auth_and_problem_responses(
    api: httpx.AsyncClient,
) -> None:
    r = await api.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"].startswith("3.1.")
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    served = {
        (m.lower(), route.path) for route in HTTP_ROUTES for m in route.methods or () if m != "HEAD"
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == served

    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in schemas, ref
    problem = schemas["ProblemOut"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    for name in ("RouteIn", "BookingIn", "ChangeIn", "PassengerIn", "CoachIn"):
        assert schemas[name]["additionalProperties"] is False, name

    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            needs_auth = (method, path) not in _PUBLIC
            assert (op.get("security") == [{"bearer": []}]) is needs_auth, (method, path)
            if needs_auth:
                assert "401" in op["responses"], (method, path)
            for status, response in op["responses"].items():
                if int(status) >= 400 and path != "/readyz":
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
                    assert response["content"][PROBLEM]["schema"]["$ref"].endswith("ProblemOut")
    booking = doc["paths"]["/v1/routes/{route_id}/bookings"]["post"]
    assert {"201", "202", "400", "401", "404", "409", "413", "415", "422", "429", "503"} <= set(
        booking["responses"]
    )
    assert booking["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "BookingIn"
    )
    key = [p for p in booking["parameters"] if p["in"] == "header"]
    assert key and key[0]["name"] == "Idempotency-Key" and key[0]["required"] is True


async def test_a_rush_of_reads_on_a_cold_route_is_served(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    # more requests at once than the front end has Redis connections
    rid = await create_route(api, token("ops", True), route_body(train_of(route_id_factory)))
    answers = await asyncio.gather(
        *(api.get(f"/v1/routes/{rid}") for _ in range(150)),
        *(api.get("/v1/routes") for _ in range(150)),
    )
    assert {r.status_code for r in answers} == {200}, {r.status_code for r in answers}

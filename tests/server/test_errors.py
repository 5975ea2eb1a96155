"""Every failure is an RFC 9457 problem: bad paths, methods, bodies, media types and tokens."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from conftest import JWT_SECRET
from support.http import (
    Ids,
    Tokens,
    assert_problem,
    book,
    booking_body,
    create_route,
    new_key,
    people,
    route_body,
    train_of,
)

from server.api.auth import mint

LIMIT = 64 * 1024
BOOKING_ID = "T0-20261201-0123456789abcdef01234567"


# ---- paths and methods --------------------------------------------------------------------


@pytest.mark.parametrize(
    # "/" is the web console's buyer page now (server/console)
    "path",
    ["/nope", "/v1", "/v1/booking", "/v1/routes/X/nothing", "/v2/routes", "/console/x"],
)
async def test_unknown_paths_are_404_problems(api: httpx.AsyncClient, path: str) -> None:
    assert_problem(await api.get(path), 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/routes", {"GET", "POST"}),
        ("DELETE", "/v1/routes/G1-20261201", {"GET"}),
        ("PATCH", "/v1/routes/G1-20261201/bookings", {"GET", "POST"}),
        ("POST", "/v1/routes/G1-20261201/availability", {"GET"}),
        ("PUT", f"/v1/bookings/{BOOKING_ID}", {"GET", "DELETE"}),
        ("GET", f"/v1/bookings/{BOOKING_ID}/confirm", {"POST"}),
        ("GET", f"/v1/bookings/{BOOKING_ID}/change", {"POST"}),
        ("POST", "/healthz", {"GET"}),
        ("DELETE", "/openapi.json", {"GET"}),
        ("TRACE", "/metrics", {"GET"}),
    ],
)
async def test_wrong_methods_are_405_problems_naming_the_allowed_ones(
    api: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    r = await api.request(method, path)
    assert_problem(r, 405, "method-not-allowed")
    # RFC 9110 §15.5.6: a 405 must say what is allowed
    assert {m.strip() for m in r.headers["allow"].split(",")} - {"HEAD"} == allowed


# ---- bodies -------------------------------------------------------------------------------


def _padded(body: dict[str, Any], size: int) -> bytes:
    """`body` as JSON padded with trailing whitespace to exactly `size` bytes."""
    raw = json.dumps(body).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


async def test_a_body_of_exactly_64_kib_is_accepted_and_one_byte_more_is_413(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    headers = {"Authorization": token("ops", True), "Content-Type": "application/json"}
    body = route_body(train_of(route_id_factory))
    r = await api.post("/v1/routes", content=_padded(body, LIMIT + 1), headers=headers)
    assert_problem(r, 413, "payload-too-large")
    r = await api.post("/v1/routes", content=_padded(body, LIMIT), headers=headers)
    assert r.status_code == 201, r.text


async def _chunks(total: int, size: int = 8192) -> AsyncIterator[bytes]:
    sent = 0
    yield b'{"train": "'
    while sent < total:
        yield b"X" * size
        sent += size


async def test_oversized_bodies_without_content_length_are_413(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    targets: list[tuple[str, dict[str, str]]] = [
        ("/v1/routes", {"Authorization": admin}),
        (f"/v1/routes/{rid}/bookings", {"Authorization": token("u1"), "Idempotency-Key": "k"}),
        (f"/v1/bookings/{rid}-{'0' * 24}/change", {"Authorization": token("u1")}),
    ]
    for path, headers in targets:
        request = api.build_request(
            "POST",
            path,
            content=_chunks(10 * LIMIT),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        assert_problem(await api.send(request), 413, "payload-too-large")

        # the same path with a Content-Length over the limit
        r = await api.post(
            path,
            content=b" " * (LIMIT + 1),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_problem(r, 413, "payload-too-large")


async def test_a_small_streamed_body_is_accepted(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    raw = json.dumps(route_body(train_of(route_id_factory))).encode()

    async def two_chunks() -> AsyncIterator[bytes]:
        yield raw[:10]
        yield raw[10:]

    r = await api.post(
        "/v1/routes",
        content=two_chunks(),
        headers={"Authorization": token("ops", True), "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"train": "G1",}', b"\xff\xfe{}", b"{'train': 'G1'}", b"NaN", b"[1, 2"],
    ids=["empty", "open brace", "trailing comma", "bad utf-8", "single quotes", "NaN", "cut"],
)
async def test_malformed_json_is_400(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids, raw: bytes
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    for path, headers in [
        ("/v1/routes", {"Authorization": admin}),
        (f"/v1/routes/{rid}/bookings", {"Authorization": token("u"), "Idempotency-Key": "k"}),
    ]:
        headers = {**headers, "Content-Type": "application/json"}
        r = await api.post(path, content=raw, headers=headers)
        assert_problem(r, 400, "malformed-json")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "x/y"],
)
async def test_non_json_media_types_are_415(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids, content_type: str
) -> None:
    admin = token("ops", True)
    body = route_body(train_of(route_id_factory))
    raw = json.dumps(body).encode()
    r = await api.post(
        "/v1/routes", content=raw, headers={"Authorization": admin, "Content-Type": content_type}
    )
    assert_problem(r, 415, "unsupported-media-type")
    # nothing was created: the same body as JSON still creates the route
    r = await api.post(
        "/v1/routes",
        content=raw,
        headers={"Authorization": admin, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201, r.text


# ---- tokens -------------------------------------------------------------------------------


def _hs512(claims: dict[str, Any]) -> str:
    """A token signed with the right secret but an algorithm the server does not accept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)  # the point
        return jwt.encode(claims, JWT_SECRET, "HS512")


def _bad_credentials() -> dict[str, str | None]:
    now = int(time.time())
    return {
        "missing": None,
        "empty": "",
        "basic scheme": "Basic b3BzOnNlY3JldA==",
        "bearer without token": "Bearer",
        "garbage": "Bearer not-a-jwt",
        "expired": f"Bearer {mint(JWT_SECRET, 'ops', admin=True, ttl=-60)}",
        "wrong secret": f"Bearer {mint('another-secret-0123456789abcdef-0123', 'ops', True)}",
        "alg none": "Bearer " + jwt.encode({"sub": "ops", "role": "admin"}, None, algorithm="none"),  # type: ignore[arg-type]
        "HS512": f"Bearer {_hs512({'sub': 'ops', 'role': 'admin', 'exp': now + 60})}",
        "no sub": "Bearer " + jwt.encode({"role": "admin", "exp": now + 60}, JWT_SECRET, "HS256"),
        "numeric sub": "Bearer "
        + jwt.encode({"sub": 7, "role": "admin", "exp": now + 60}, JWT_SECRET, "HS256"),
        "not yet valid": "Bearer "
        + jwt.encode({"sub": "ops", "nbf": now + 3600, "role": "admin"}, JWT_SECRET, "HS256"),
    }


_CREDENTIALS = _bad_credentials()


@pytest.mark.parametrize("case", _CREDENTIALS, ids=list(_CREDENTIALS))
async def test_bad_credentials_are_401_with_www_authenticate_on_every_protected_endpoint(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids, case: str
) -> None:
    admin = token("ops", True)
    body = route_body(train_of(route_id_factory))
    rid = await create_route(api, admin, body)
    header = _CREDENTIALS[case]
    auth = {} if header is None else {"Authorization": header}
    booking = booking_body("A", "B", "second", people("x"))
    change = {"from": "A", "to": "C", "class": "second"}
    bid = f"{rid}-{'ab' * 12}"
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/v1/routes", {"json": {**body, "train": body["train"] + "X"}}),
        ("POST", f"/v1/routes/{rid}/bookings", {"json": booking}),
        ("GET", f"/v1/routes/{rid}/bookings", {}),
        ("GET", f"/v1/bookings/{bid}", {}),
        ("DELETE", f"/v1/bookings/{bid}", {}),
        ("POST", f"/v1/bookings/{bid}/confirm", {}),
        ("POST", f"/v1/bookings/{bid}/change", {"json": change}),
    ]
    for method, path, kwargs in requests:
        headers = {**auth, "Idempotency-Key": new_key()}
        r = await api.request(method, path, headers=headers, **kwargs)
        assert_problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == 'Bearer realm="ticketd"', (method, path)
    r = await api.get(f"/v1/routes/{body['train']}X-20261201")
    assert_problem(r, 404, "not-found")


# ---- nothing is a 500 -----------------------------------------------------------------------


async def test_odd_requests_never_get_a_500(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    user = token("odd")
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    ok = await book(api, rid, user, booking_body("A", "B", "second", people("odd1")))
    assert ok.status_code == 201, ok.text
    mine = ok.json()["booking_id"]

    def booking(**changes: Any) -> dict[str, Any]:
        return {**booking_body("A", "B", "second", people("z")), **changes}

    json_cases: list[Any] = [
        *(None, [], "text", 7, 1.5, True, {}),
        booking(passengers="p"),
        booking(passengers=[None]),
        booking(passengers=[{"name": 1, "id": 2}]),
        booking(passengers=[{"name": "n", "id": "../x"}]),
        booking(**{"from": 1, "to": None, "class": [], "passengers": []}),
        booking(waitlist="y"),
        booking(together=10**30),
        booking(seat_letters="A"),
        booking(seat_letters=["a"]),
        booking(**{"from": "A" * 10_000}),
        booking(**{"from": "\u0000", "to": "\ud7ff"}),
    ]
    bodies = [json.dumps(value).encode() for value in json_cases]
    bodies.append(b"[" * 30_000 + b"]" * 30_000)  # nested deeper than any parser recurses
    bodies.append(b'{"from": "A", "from": "B", "to": "C", "class": "second", "passengers": []}')
    requests: list[tuple[str, str, dict[str, Any]]] = []
    for raw in bodies:
        headers = {"Idempotency-Key": new_key(), "Content-Type": "application/json"}
        for path, auth in [
            (f"/v1/routes/{rid}/bookings", user),
            (f"/v1/bookings/{mine}/change", user),
            ("/v1/routes", admin),
        ]:
            requests.append(
                ("POST", path, {"content": raw, "headers": {**headers, "Authorization": auth}})
            )
    odd_ids = [
        "x",
        "-",
        "..",
        "%00",
        "%2F",
        "%E2%98%83",
        "A" * 5000,
        f"{rid}-",
        f"{rid}-{'g' * 24}",
        f"{rid}-{'0' * 24}",
        f"{rid}-{'0' * 25}",
        f"{rid.lower()}-{'0' * 24}",
        f"NOPE-20261201-{'0' * 24}",
        f"{mine}%0A",
        f"{mine}/..",
    ]
    for bid in odd_ids:
        for method, suffix in [("GET", ""), ("DELETE", ""), ("POST", "/confirm")]:
            requests.append(
                (method, f"/v1/bookings/{bid}{suffix}", {"headers": {"Authorization": user}})
            )
        requests.append(
            (
                "POST",
                f"/v1/bookings/{bid}/change",
                {
                    "json": {"from": "A", "to": "B", "class": "second"},
                    "headers": {"Authorization": user},
                },
            )
        )
    for q in [
        "from=A&to=B&from=C",
        "from=%00&to=B",
        "from=A&to=" + "B" * 10_000,
        "from[]=A&to=B",
        "from=%FF&to=%FE",
        "from=A&to=B&extra=1",
    ]:
        requests.append(("GET", f"/v1/routes/{rid}/availability?{q}", {}))
    for key in ["", " ", "a b", "k" * 129, "ключ", "\t"]:
        headers = {"Authorization": user, "Idempotency-Key": key.encode("utf-8")}
        body = booking_body("A", "B", "second", people("k1"))
        requests.append(("POST", f"/v1/routes/{rid}/bookings", {"json": body, "headers": headers}))
    for auth in [b"Bearer \xff\xfe", b"\xff", "Bearer " + "a" * 10_000]:
        requests.append(("GET", f"/v1/bookings/{mine}", {"headers": {"Authorization": auth}}))

    for method, path, kwargs in requests:
        r = await api.request(method, path, **kwargs)
        assert r.status_code < 500, (method, path, kwargs.get("content", b"")[:200], r.text)
        if r.status_code >= 400:
            assert_problem(r, r.status_code)
    # and the booking everything was aimed at is untouched
    r = await api.get(f"/v1/bookings/{mine}", headers={"Authorization": user})
    assert r.json() == ok.json()

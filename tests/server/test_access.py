"""Object-level access and mass assignment: a booking is its owner's, and bodies are closed."""

from __future__ import annotations

from typing import Any

import httpx
from support.http import (
    Ids,
    Tokens,
    admin_list,
    assert_problem,
    availability,
    book,
    booking_body,
    create_route,
    people,
    route_body,
    train_of,
)


async def test_another_users_booking_is_404_for_every_action_even_for_admins(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    alice = {"Authorization": token("alice")}
    r = await book(api, rid, alice["Authorization"], booking_body("A", "C", "second", people("a")))
    assert r.status_code == 201, r.text
    held = r.json()
    bid = held["booking_id"]
    missing = f"{rid}-{'0' * 24}"  # well-formed, on the same route, never issued

    def actions(booking_id: str) -> list[tuple[str, str, dict[str, Any]]]:
        path = f"/v1/bookings/{booking_id}"
        return [
            ("GET", path, {}),
            ("POST", f"{path}/confirm", {}),
            ("POST", f"{path}/change", {"json": {"from": "A", "to": "D", "class": "business"}}),
            ("DELETE", path, {}),
        ]

    for intruder in (token("bob"), token("root", admin=True)):
        for (method, path, kwargs), (_, missing_path, _) in zip(
            actions(bid), actions(missing), strict=True
        ):
            r = await api.request(method, path, headers={"Authorization": intruder}, **kwargs)
            problem = assert_problem(r, 404, "not-found")
            # indistinguishable from a booking that does not exist
            r = await api.request(
                method, missing_path, headers={"Authorization": intruder}, **kwargs
            )
            absent = assert_problem(r, 404, "not-found")
            assert missing in absent["detail"]
            assert problem == {
                **absent,
                "booking_id": bid,
                "detail": absent["detail"].replace(missing, bid),
            }

    # nothing the intruders did reached alice's booking
    r = await api.get(f"/v1/bookings/{bid}", headers=alice)
    assert (r.status_code, r.json()) == (200, held)
    assert await availability(api, rid, "A", "D") == {"business": 2, "second": 3}
    # and bookings of bad shape or on unknown routes are 404 too
    for odd in ["nope", f"{rid}-xyz", f"NOPE4-20261201-{'0' * 24}", bid.upper(), bid + "0"]:
        r = await api.get(f"/v1/bookings/{odd}", headers=alice)
        assert_problem(r, 404, "not-found")


async def test_extra_fields_in_a_booking_are_422_and_book_nothing(
    api: httpx.AsyncClient, token: Tokens, route_id_factory: Ids
) -> None:
    admin = token("ops", True)
    rid = await create_route(api, admin, route_body(train_of(route_id_factory)))
    before = await availability(api, rid, "A", "D")
    base = booking_body("A", "C", "business", people("m1"))
    extras: list[dict[str, Any]] = [
        {"price": 0},
        {"status": "confirmed"},
        {"seats": [{"coach": "01", "seat": "01A", "passenger": 0}]},
        {"user": "alice"},
        {"booking_id": f"{rid}-{'f' * 24}"},
        {"hold_expires_at": "2099-01-01T00:00:00Z"},
        {"route_id": "OTHER-20261201"},
        {"passengers": [{"name": "VIP", "id": "m1", "class": "business", "paid": True}]},
    ]
    for extra in extras:
        r = await book(api, rid, token("mallory"), {**base, **extra})
        problem = assert_problem(r, 422, "validation")
        assert "unknown field" in problem["detail"], problem
    # and the same request without the extras goes through: the extras alone were refused
    assert await admin_list(api, rid, admin) == []
    assert await availability(api, rid, "A", "D") == before
    r = await book(api, rid, token("mallory"), base)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "held"

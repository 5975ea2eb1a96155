"""A route is created, booked and read back through the real app, Ray and Redis."""

from __future__ import annotations

from collections.abc import Callable

import httpx


async def test_book_then_availability_reads_own_write(
    api: httpx.AsyncClient, token: Callable[..., str], route_id_factory: Callable[[], str]
) -> None:
    train = route_id_factory().split("-")[0]
    route = {
        "train": train,
        "date": "2026-12-01",
        "stations": ["A", "B", "C"],
        "coaches": [{"number": "01", "class": "second", "rows": 1, "letters": "AB"}],
    }
    r = await api.post("/v1/routes", json=route, headers={"Authorization": token("ops", True)})
    assert r.status_code == 201, r.text
    rid = r.json()["route_id"]
    r = await api.post(
        f"/v1/routes/{rid}/bookings",
        json={"from": "A", "to": "C", "class": "second", "passengers": [{"name": "Li", "id": "1"}]},
        headers={"Authorization": token("alice"), "Idempotency-Key": "k1"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["seats"] == [{"coach": "01", "seat": "01A", "passenger": 0}]
    r = await api.get(f"/v1/routes/{rid}/availability", params={"from": "A", "to": "B"})
    assert r.json()["availability"] == {"second": 1}

"""Virtual-actor lifecycle: an idle route actor goes away and comes back transparently."""

from __future__ import annotations

import asyncio

import ray
from support.http import AppFactory, Ids, Tokens

from actors.config import NAMESPACE
from actors.directory import actor_name


def _alive(route_id: str) -> bool:
    try:
        ray.get_actor(actor_name(route_id), namespace=NAMESPACE)
    except ValueError:
        return False
    return True


async def test_idle_actor_deactivates_and_reactivates_with_identical_state(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    api = await app_factory(idle_seconds=1.0, availability_refresh=0.0)
    rid = route_id_factory()
    route = {
        "train": rid.split("-")[0],
        "date": "2026-12-01",
        "stations": ["A", "B", "C"],
        "coaches": [{"number": "01", "class": "second", "rows": 2, "letters": "AB"}],
    }
    admin = {"Authorization": token("ops", True)}
    assert (await api.post("/v1/routes", json=route, headers=admin)).status_code == 201
    booked = []
    for n in range(3):
        r = await api.post(
            f"/v1/routes/{rid}/bookings",
            json={
                "from": "A",
                "to": "C",
                "class": "second",
                "passengers": [{"name": "x", "id": f"p{n}"}],
            },
            headers={"Authorization": token(f"u{n}"), "Idempotency-Key": f"k{n}"},
        )
        assert r.status_code == 201, r.text
        booked.append(r.json())
    before = (await api.get(f"/v1/routes/{rid}/bookings", headers=admin)).json()
    assert _alive(rid)
    for _ in range(40):  # idle 1 s, checked every sweep interval; allow the kill to land
        await asyncio.sleep(0.25)
        if not _alive(rid):
            break
    assert not _alive(rid), "idle actor still running"
    # the next request reactivates it from Redis, the client sees nothing of it
    after = (await api.get(f"/v1/routes/{rid}/bookings", headers=admin)).json()
    assert after == before
    r = await api.get(f"/v1/routes/{rid}/availability", params={"from": "A", "to": "C"})
    assert r.json()["availability"] == {"second": 1}
    again = await api.post(
        f"/v1/routes/{rid}/bookings",
        json={"from": "A", "to": "C", "class": "second", "passengers": [{"name": "x", "id": "p0"}]},
        headers={"Authorization": token("u0"), "Idempotency-Key": "k0"},
    )
    assert again.status_code == 201 and again.json() == booked[0]

"""Builders for the tests of sales and their waiting rooms (tests/server/, tests/console/)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


def at(seconds: float) -> str:
    """An RFC 3339 time `seconds` from now."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)).isoformat()


def sale_body(routes: list[str], opens_in: float, rate: float | None = 1000.0) -> dict[str, Any]:
    """A sale of `routes` opening in `opens_in` seconds, admitting `rate` a second."""
    return {"routes": routes, "opens_at": at(opens_in), "admit_per_second": rate}


async def create_sale(api: httpx.AsyncClient, admin: str, routes: list[str], opens_in: float,
                      rate: float | None = 1000.0) -> dict[str, Any]:  # fmt: skip
    """Create a sale as `admin` (a bearer header value); returns it (asserts 201)."""
    body = sale_body(routes, opens_in, rate)
    r = await api.post("/v1/sales", json=body, headers={"Authorization": admin})
    assert r.status_code == 201, r.text
    sale: dict[str, Any] = r.json()
    return sale


async def get_sale(api: httpx.AsyncClient, sale_id: str, auth: str) -> dict[str, Any]:
    """The sale as GET /v1/sales/{id} answers it (asserts 200)."""
    r = await api.get(f"/v1/sales/{sale_id}", headers={"Authorization": auth})
    assert r.status_code == 200, r.text
    sale: dict[str, Any] = r.json()
    return sale


async def until(what: str, check: Callable[[], Awaitable[Any]], seconds: float = 10.0) -> Any:
    """Wait for `check` to give something true (a keeper's pass runs every 0.2 s)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not (got := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"within {seconds:g} s: {what}"
        await asyncio.sleep(0.1)
    return got

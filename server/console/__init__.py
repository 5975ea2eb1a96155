"""The web console (issue 14): buyer search, seat map, operator view.

Pages and static files (`pages.py`, `static/`), the seat-map read
(`seats.py`), the operator's JSON (`admin.py`, fed by `sampler.py`) and their
OpenAPI entries (`doc.py`).
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.routing import Route

from server.console import admin, pages
from server.console.admin import ActorWatch
from server.console.sampler import Sampler
from server.console.seats import SeatMaps, seats_endpoint
from server.console.services import Console

__all__ = ["ROUTES", "start"]

ROUTES = [
    Route("/v1/routes/{route_id}/seats", seats_endpoint, methods=["GET"]),
    Route("/v1/admin/routes", admin.admin_routes, methods=["GET"]),
    Route("/v1/admin/sales", admin.admin_sales, methods=["GET"]),
    Route("/v1/admin/actors", admin.admin_actors, methods=["GET"]),
    Route("/v1/admin/frontend", admin.admin_frontend, methods=["GET"]),
    Route("/", pages.buyer_page, methods=["GET"]),
    Route("/routes/{route_id}", pages.seat_map_page, methods=["GET"]),
    Route("/ops", pages.ops_page, methods=["GET"]),
    Route("/console/{name}", pages.static_file, methods=["GET"]),
]


def start(app: Starlette) -> asyncio.Task[None]:
    """Set up the console's state on a started app; the returned sampler task runs until
    the app cancels it at shutdown."""
    svc = app.state.services
    sampler = Sampler(svc.gateway)
    maps = SeatMaps(svc.gateway, svc.settings.availability_refresh)
    app.state.console = Console(maps, sampler, ActorWatch())
    return asyncio.create_task(sampler.run())

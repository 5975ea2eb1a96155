"""The web console (issue 14): buyer search, seat map, operator view.

Pages and static files (`pages.py`, `static/`), the seat-map read
(`seats.py`) and the operator's JSON (`admin.py`, fed by `sampler.py` and
`actor_watch.py`). Their
endpoints are rows of the contract's one table (`server/contract.py`).
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from server.console.actor_watch import ActorWatch
from server.console.context import Console
from server.console.sampler import Sampler
from server.console.seats import SeatMaps

__all__ = ["start"]


def start(app: Starlette) -> asyncio.Task[None]:
    """Set up the console's state on a started app; the returned sampler task runs until
    the app cancels it at shutdown."""
    svc = app.state.services
    sampler = Sampler(svc.gateway)
    maps = SeatMaps(svc.gateway, svc.settings.availability_refresh)
    app.state.console = Console(maps, sampler, ActorWatch())
    return asyncio.create_task(sampler.run())

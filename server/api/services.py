"""What every endpoint reaches through `request.app.state`: the front end's services."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aredis
from starlette.requests import Request
from starlette.responses import Response

from actors.domain.route import resolve_trip
from actors.domain.views import Result
from actors.storage.read_side import UserIndex
from server.api import render
from server.api.auth import Authenticator
from server.api.common import json_response
from server.api.problems import from_domain
from server.catalog.finder import Search
from server.dispatch.channel import Channel
from server.dispatch.gateway import Gateway
from server.settings import Settings
from server.waiting.room import WaitingRoom

_STATUS_OF_KIND = {"created": 201, "waitlisted": 202, "ok": 200}


@dataclass(slots=True)
class Services:
    settings: Settings
    auth: Authenticator
    gateway: Gateway
    client: aredis.Redis
    search: Search
    users: UserIndex
    room: WaitingRoom


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def answer(ch: Channel, res: Result, admin: bool = False) -> Response:
    """An actor's result as the HTTP answer: the booking, or the domain error's problem."""
    if not res.ok:
        assert res.error is not None
        return from_domain(res.error)
    assert res.record is not None
    booking = render.view(ch.route).booking(res.record, admin)
    return json_response(booking, _STATUS_OF_KIND[res.kind])


def trip(ch: Channel, from_: str, to: str, klass: str | None = None) -> tuple[int, int]:
    """Validate a trip against the route on the front end: bad input never costs a call."""
    return resolve_trip(ch.route.route_id, ch.station_index, ch.classes, from_, to, klass)

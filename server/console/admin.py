"""The operator console's JSON (admin only): routes of a date, the sales curve, the route
actors, the front end's own figures. /ops polls these; none scrapes /metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray
import structlog
from ray import exceptions as rex
from starlette.requests import Request
from starlette.responses import Response

from actors.config import NAMESPACE
from actors.directory import actor_name
from server.api import query
from server.api.common import endpoint, json_response
from server.api.problems import Problem
from server.api.services import services
from server.console import payloads as out
from server.console.context import Console
from server.console.sampler import HISTORY, Sampler
from server.console.seats import SeatMaps
from server.dispatch.errors import DispatchError

log = structlog.get_logger("ticketd.console")

#: how long one look at the cluster's route actors is reused (every operator shares it)
ACTORS_TTL = 2.0
#: how long one actor may take to answer `info`
_INFO_SECONDS = 2.0
#: an actor that ran a command within this long is "active"
ACTIVE_SECONDS = 5.0
_PREFIX = actor_name("")


def _names_and_nodes() -> tuple[list[str], dict[str, str]]:
    """Route ids with a live actor, and node id -> address (blocking: GCS calls)."""
    named = ray.util.list_named_actors(all_namespaces=True)
    routes = sorted(
        a["name"][len(_PREFIX) :]
        for a in named
        if a.get("namespace") == NAMESPACE and a["name"].startswith(_PREFIX)
    )
    nodes = {n["NodeID"]: n.get("NodeManagerAddress", "") for n in ray.nodes() if n.get("Alive")}  # type: ignore[no-untyped-call]
    return routes, nodes


def _handles(route_ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rid in route_ids:
        try:
            out[rid] = ray.get_actor(actor_name(rid), namespace=NAMESPACE)
        except ValueError:
            continue  # gone since it was listed
    return out


class ActorWatch:
    """The cluster's route actors as `info` reports them, looked at once per ACTORS_TTL."""

    def __init__(self) -> None:
        self._seen: tuple[float, out.Actors, frozenset[str]] | None = None
        self._looking: asyncio.Task[tuple[float, out.Actors, frozenset[str]]] | None = None

    async def look(self) -> tuple[out.Actors, frozenset[str]]:
        """(the actors, the route ids that have one)."""
        seen = self._seen
        if seen is not None and time.monotonic() - seen[0] <= ACTORS_TTL:
            return seen[1], seen[2]
        if self._looking is None or self._looking.done():
            self._looking = asyncio.create_task(self._collect())
        seen = await asyncio.shield(self._looking)
        self._seen = seen
        return seen[1], seen[2]

    async def _collect(self) -> tuple[float, out.Actors, frozenset[str]]:
        try:
            routes, nodes = await asyncio.to_thread(_names_and_nodes)
            handles = await asyncio.to_thread(_handles, routes)
        except Exception as exc:  # the GCS is unreachable (a restart, a partition)
            log.warning("route actors could not be listed", error=repr(exc))
            raise Problem("unavailable", "The Ray cluster did not answer; retry.") from None

        async def info(handle: Any) -> dict[str, Any]:
            async with asyncio.timeout(_INFO_SECONDS):
                answer: dict[str, Any] = await handle.info.remote()
                return answer

        got = await asyncio.gather(*(info(h) for h in handles.values()), return_exceptions=True)
        actors, unreachable = [], []
        for rid, res in zip(handles, got, strict=True):
            if isinstance(res, BaseException):
                if not isinstance(res, TimeoutError | rex.RayError):
                    raise res
                unreachable.append(rid)
                continue
            idle = float(res["idle_seconds"])
            actor = out.ActorOut(
                rid, res["node_id"], nodes.get(res["node_id"], "?"), res["pid"], res["epoch"],
                round(res["recovery_seconds"], 4), res["events_applied"], res["batches"], idle,
                "active" if idle < ACTIVE_SECONDS else "idle",
            )  # fmt: skip
            actors.append(actor)
        answer = out.Actors(actors, unreachable)
        return time.monotonic(), answer, frozenset(routes)


def _admin(request: Request) -> Console:
    request.app.state.services.auth.admin(request.headers.get("authorization"))
    console: Console = request.app.state.console
    return console


def _only(request: Request, allowed: tuple[str, ...]) -> None:
    for name in request.query_params:
        if name not in allowed:
            takes = ", ".join(allowed) if allowed else "no query parameters"
            raise Problem("validation", f"Unknown query parameter {name!r}; this takes {takes}.")


@endpoint("admin_routes")
async def admin_routes(request: Request) -> Response:
    console = _admin(request)
    _only(request, ("date",))
    date = request.query_params.get("date", "")
    query.date(date, required=True)  # the same rule (and sentence) as search's
    reads = services(request)
    maps: SeatMaps = console.seat_maps
    index = await reads.search.date(date)
    try:
        _, live = await console.actors.look()
    except Problem:
        live = frozenset()  # Ray does not answer: every route as if idle, nothing woken
    routes = [index.routes[rid] for rid in sorted(index.routes)]

    async def row(route: Any) -> out.AdminRoute:
        total = len(route.seats())
        if route.route_id in live:
            try:
                got = await maps.get(await reads.gateway.channel(route.route_id))
            except DispatchError:
                got = None
            if got is not None:
                m = got.seats
                free = sum(1 for b in m.bits if not b)
                return out.AdminRoute(route.route_id, route.train, total, free, True,
                                      m.sold, m.held, m.waitlisted)  # fmt: skip
        # an idle route: free seats from the availability its actor stored, nothing woken
        stations = route.stations
        trains = await reads.search.trains(date, stations[0], stations[-1])
        free = next(
            (sum(t.availability.values()) for t in trains if t.route.route_id == route.route_id),
            total,
        )
        return out.AdminRoute(route.route_id, route.train, total, free, False, None, None, None)

    rows = await asyncio.gather(*(row(r) for r in routes))
    return json_response(out.AdminRoutes(date, list(rows)))


@endpoint("admin_sales")
async def admin_sales(request: Request) -> Response:
    console = _admin(request)
    _only(request, ("seconds",))
    raw = request.query_params.get("seconds", "300")
    if not raw.isdigit() or not 1 <= int(raw) <= HISTORY:
        raise Problem("validation", f"'seconds' must be a whole number from 1 to {HISTORY}.")
    sampler: Sampler = console.sampler
    return json_response(sampler.sales(int(raw)))


@endpoint("admin_actors")
async def admin_actors(request: Request) -> Response:
    console = _admin(request)
    _only(request, ())
    actors, _ = await console.actors.look()
    return json_response(actors)


@endpoint("admin_frontend")
async def admin_frontend(request: Request) -> Response:
    console = _admin(request)
    _only(request, ())
    sampler: Sampler = console.sampler
    return json_response(sampler.frontend())

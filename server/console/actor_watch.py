"""The cluster's route actors as the operator console shows them: each one's `info`,
looked at once per ACTORS_TTL however many operators ask (it lists Ray's named actors,
a GCS round trip, and asks every actor)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ray
import structlog
from ray import exceptions as rex

from actors.config import NAMESPACE
from actors.directory import actor_name
from server.api.problems import Problem
from server.console import payloads as out

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

"""Every Redis key ticketd uses, in one place.

A route's own keys share the hash tag `{<route_id>}` so that a Redis Cluster
keeps them in one slot: the fenced-append script touches two of them at once.
"""

from __future__ import annotations

PREFIX = "ticketd"

#: hash route_id -> route definition JSON
ROUTES = f"{PREFIX}:routes"


def journal(route_id: str) -> str:
    """Stream of event batches of a route (field `e`: msgpack list of events)."""
    return f"{PREFIX}:{{{route_id}}}:journal"


def snapshot(route_id: str) -> str:
    """Hash with the latest snapshot: `data`, `last_id` (journal entry covered), `epoch`."""
    return f"{PREFIX}:{{{route_id}}}:snapshot"


def epoch(route_id: str) -> str:
    """Integer incremented by every activation of the route's actor (fencing token)."""
    return f"{PREFIX}:{{{route_id}}}:epoch"

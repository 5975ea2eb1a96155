"""Where a new route actor runs: the alive node holding the fewest routes (docs/architecture.md).

Ray's SPREAD strategy is best-effort for 0-CPU actors: in one of four two-node runs all
six route actors landed on one node, whose failure would then take every route. So a
route's node is chosen here, when its actor is activated, over the nodes alive at that
moment (a node that joined counts at once, one that left no longer does):

- a route whose last node is still alive goes back there;
- otherwise the node with the fewest routes placed on it wins: N nodes hold about 1/N;
- ties go by rendezvous hashing of (route, node), so the choice is deterministic and
  different routes prefer different nodes;
- the choice and its count live in one Redis hash, updated by one script, so front ends
  activating routes at the same moment still spread them instead of all picking the
  same least-loaded node.

The actor is then created with a label selector on that node's id and fallbacks
(node_options): the route's other alive nodes in its rendezvous order, then any node. So
when a node dies, Ray restarts its actors on the survivors each route's hash order names,
spread over them, not all on one: a node starts only as many worker processes at once as
it has cores, so four actors restarting on one 2-core node took two rounds (4 s more than
one). Each activation records where it really runs (record()). Routes are not moved
when a node joins (a move is a short outage of the route): new activations fill it.

`only` (TICKETD_ROUTE_NODES, e.g. `ticketd-routes=yes`) keeps route actors on the nodes
carrying those Ray labels (`ray start --labels`), say off the head, whose loss no route
survives anyway (it holds the GCS). When none of them is alive, a route still starts
anywhere (a warning says so): a route that cannot run is worse than one in the wrong place.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import ray
import redis

from actors.storage import keys, topology

log = logging.getLogger(__name__)

#: the label Ray gives every node: its id (hex)
NODE_LABEL = "ray.io/node-id"

#: KEYS[1] placement hash; ARGV[1] route id; ARGV[2..] alive node ids, preferred first.
#: A route whose recorded node is still alive stays there (front ends racing to activate
#: one route agree, and its count stays true); else count routes per alive node, record
#: the least loaded as the route's node and return it.
_PICK = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
for i = 2, #ARGV do
  if ARGV[i] == current then return current end
end
local counts = {}
for i = 2, #ARGV do counts[ARGV[i]] = 0 end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local node = all[i + 1]
  if all[i] ~= ARGV[1] and counts[node] ~= nil then counts[node] = counts[node] + 1 end
end
local best, least = ARGV[2], counts[ARGV[2]]
for i = 3, #ARGV do
  if counts[ARGV[i]] < least then best, least = ARGV[i], counts[ARGV[i]] end
end
redis.call('HSET', KEYS[1], ARGV[1], best)
return best
"""


def preference(route_id: str, nodes: list[str]) -> list[str]:
    """The nodes in this route's rendezvous-hash order (deterministic, differs per route)."""

    def weight(node: str) -> bytes:
        return hashlib.blake2b(f"{route_id}|{node}".encode(), digest_size=8).digest()

    return sorted(nodes, key=weight, reverse=True)


def node_options(
    node: str, then: list[str] | None = None, only: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run on `node`; when it cannot (it died, say), on the first of `then` that can, then
    on any other node with the labels `only`, and at last on any other node.

    Label selectors on the node id with fallbacks, not a soft
    NodeAffinitySchedulingStrategy: on one machine with three Ray nodes, Ray placed a
    soft-affine 0-CPU actor elsewhere about half the time; the selector held every time.
    """
    fallbacks = [{"label_selector": {NODE_LABEL: n}} for n in then or [] if n != node]
    if only:
        fallbacks.append({"label_selector": {**only, NODE_LABEL: f"!{node}"}})
    fallbacks.append({"label_selector": {NODE_LABEL: f"!{node}"}})
    return {"label_selector": {NODE_LABEL: node}, "fallback_strategy": fallbacks}


def record(client: redis.Redis, route_id: str, node_id: str) -> None:
    """Note where an activation really runs (Ray may have placed or restarted it elsewhere),
    so the counts choose() goes by stay true after a node's actors moved."""
    client.hset(keys.PLACEMENT, route_id, node_id)


def alive_nodes(only: dict[str, str] | None = None) -> list[str]:
    """Ids (hex) of the nodes the GCS considers alive, those with the labels `only` if
    given (a GCS round trip: blocking)."""
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    return [n["NodeID"] for n in nodes if n.get("Alive") and labelled(n.get("Labels"), only)]


def labelled(labels: dict[str, str] | None, only: dict[str, str] | None) -> bool:
    """Whether a node's labels include every one of `only` (no `only`: every node does)."""
    return not only or all((labels or {}).get(k) == v for k, v in only.items())


class Placement:
    """Chooses and records the node of each route actor activation."""

    def __init__(self, redis_url: str, only: dict[str, str] | None = None) -> None:
        self._redis_url = redis_url
        self._only = only or None
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()  # callers run on worker threads (asyncio.to_thread)

    def choose(self, route_id: str, nodes: list[str]) -> str:
        """The route's node among `nodes`: its recorded one if there, else the least loaded
        (ties by rendezvous hash), recorded."""
        with self._lock:
            if self._client is None:
                self._client = topology.sync_client(
                    self._redis_url, socket_timeout=2, socket_connect_timeout=2
                )
            client = self._client
        order = preference(route_id, nodes)
        node = client.eval(_PICK, 1, keys.PLACEMENT, route_id, *order)
        return node.decode() if isinstance(node, bytes) else str(node)

    def options(self, route_id: str) -> dict[str, Any]:
        """Ray actor options placing a new activation of the route's actor."""
        try:
            nodes = alive_nodes(self._only)
            if not nodes and self._only:
                log.warning(
                    "no alive node has the labels %s (TICKETD_ROUTE_NODES): route %s "
                    "starts on any node",
                    self._only,
                    route_id,
                )
                return {}
            if len(nodes) < 2 and not self._only:
                return {}  # one node: nothing to choose
            node = self.choose(route_id, nodes)
        except (redis.RedisError, OSError) as exc:
            # placement is an optimisation: a route must still start while Redis hiccups
            log.warning("route placement fell back to SPREAD for %s: %r", route_id, exc)
            return {"scheduling_strategy": "SPREAD"}
        # where Ray restarts it if that node dies: the route's next nodes by hash, so the
        # routes of a dead node spread over the survivors
        return node_options(node, preference(route_id, nodes), self._only)

    def close(self) -> None:
        """Close the Redis connection, if any."""
        if self._client is not None:
            self._client.close()
            self._client = None

"""One Redis server or a Redis Cluster: which one a URL names, and the clients for it.

`TICKETD_REDIS_URL` may name one server (the embedded default) or any node of a Redis
Cluster (docs/deploy.md). Which it is, is asked once per URL (`INFO cluster`); every
client ticketd opens then comes from here, redis-py's `RedisCluster` for a cluster.
The nodes a cluster client has seen are remembered per URL, so a client opened after the
named node died (a reload after a failover) still finds the cluster through the others.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
import redis.asyncio as aredis
import structlog
from redis.asyncio.cluster import ClusterNode as AsyncNode
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode
from redis.exceptions import AskError, ClusterDownError, RedisClusterException, TryAgainError
from redis.retry import Retry

T = TypeVar("T")

#: per URL, the (host, port) of every node seen in the cluster it names
_KNOWN: dict[str, list[tuple[str, int]]] = {}


#: URLs known to name a cluster, or one server, without asking (`adopt`)
_ADOPTED: set[str] = set()
_SINGLE: set[str] = set()


def is_cluster(url: str) -> bool:
    """Whether url names a node of a Redis Cluster (asked once per URL and process, unless
    told by `adopt`)."""
    if url in _ADOPTED or url in _SINGLE:
        return url in _ADOPTED
    return _ask_cluster(url)


@functools.cache
def _ask_cluster(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        info: dict[str, Any] = client.info("cluster")
        return bool(info.get("cluster_enabled"))
    finally:
        client.close()


def nodes_of(url: str) -> tuple[str, ...]:
    """Every node ("host:port") of the cluster url names, () for one server: handed to
    the route actors (ActorConfig.redis_nodes), which must find the cluster even when the
    node url names is down."""
    if not is_cluster(url):
        return ()
    client = sync_client(url, socket_timeout=5, socket_connect_timeout=5)
    client.close()
    return tuple(f"{host}:{port}" for host, port in known_nodes(url))


def adopt(url: str, nodes: tuple[str, ...]) -> None:
    """Take what `nodes_of` told in another process: url names a cluster of these nodes,
    or one server if none (nothing asked of the network)."""
    if nodes:
        remember(url, [(h, int(p)) for h, _, p in (n.rpartition(":") for n in nodes)])
        _ADOPTED.add(url)
    else:
        _SINGLE.add(url)


def remember(url: str, nodes: list[tuple[str, int]]) -> None:
    """Note the nodes of the cluster url names (startup nodes for the next client)."""
    known = _KNOWN.setdefault(url, [])
    known.extend(n for n in nodes if n not in known)


def known_nodes(url: str) -> list[tuple[str, int]]:
    """The nodes seen in the cluster url names, the named one first."""
    opts = parse_url(url)
    first = (str(opts.get("host", "localhost")), int(opts.get("port", 6379)))
    return [first, *(n for n in _KNOWN.get(url, []) if n != first)]


#: how long a cluster client keeps trying a command whose primary is unreachable: a
#: failover (cluster-node-timeout, 2 s in docs/deploy.md, then an election) fits in it
FAILOVER_SECONDS = 12.0


def through_failover(asyncio: bool = False) -> Any:
    """A cluster client's retry policy: on a lost node, read the slot map again and retry
    with backoff for about FAILOVER_SECONDS. Used only for the cluster clients' commands,
    each of which is safe to repeat (reads, idempotent writes, an epoch INCR: a higher
    epoch only fences more); appends go over `slots.SlotLinks`, which never repeats one."""
    backoff = ExponentialBackoff(cap=1.0, base=0.05)
    tries = 5 + int(FAILOVER_SECONDS)  # 0.05 … 0.8 s, then 1 s each
    return AsyncRetry(backoff, tries) if asyncio else Retry(backoff, tries)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client for url: a RedisCluster if url names a cluster node.

    Typed as `redis.Redis`: ticketd calls only what both offer (single-key commands,
    scripts whose keys share a slot, non-transactional pipelines)."""
    if not is_cluster(url):
        return redis.Redis.from_url(url, **options)
    options["retry"] = through_failover()
    nodes = [ClusterNode(host, port) for host, port in known_nodes(url)]  # type: ignore[no-untyped-call]
    client = redis.RedisCluster.from_url(url, startup_nodes=nodes, **options)
    remember(url, [(n.host, int(n.port)) for n in client.get_nodes()])  # type: ignore[no-untyped-call]
    return cast(redis.Redis, client)


def async_client(url: str, max_connections: int = 100, **options: Any) -> aredis.Redis:
    """An asyncio client for url: a RedisCluster if url names a cluster node (typed as
    `aredis.Redis`, as `sync_client`); one server's gets a blocking pool of
    max_connections."""
    if not is_cluster(url):
        pool = aredis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                      **options)  # fmt: skip
        return aredis.Redis.from_pool(pool)
    options["retry"] = through_failover(asyncio=True)
    options.pop("timeout", None)  # BlockingConnectionPool's wait for a free connection
    nodes = [AsyncNode(host, port) for host, port in known_nodes(url)]
    client = aredis.RedisCluster.from_url(
        url, startup_nodes=nodes, max_connections=max_connections, **options
    )
    return cast(aredis.Redis, client)


def on_primary(client: redis.Redis, key: str, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Run commands, in one pipeline on one connection, on the server holding key: for
    a command that must follow a write on its connection (WAITAOF)."""
    server = client
    if isinstance(client, redis.RedisCluster):
        server = client.get_redis_connection(client.get_node_from_key(key))
    pipe = server.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    return list(pipe.execute())


def patiently(client: redis.Redis, steps: Callable[[], T]) -> T:
    """steps(), repeated while a failover of the cluster `client` talks to is under way
    (for about FAILOVER_SECONDS, the slot map read again each time): for steps safe to
    repeat, such as an activation's. On one server, run once."""
    if not isinstance(client, redis.RedisCluster):
        return steps()
    deadline = time.monotonic() + FAILOVER_SECONDS
    while True:
        try:
            return steps()
        except (redis.ConnectionError, redis.TimeoutError, RedisClusterException,
                ClusterDownError, TryAgainError, AskError) as exc:  # fmt: skip
            # (MOVED is an AskError; a pipeline's CLUSTERDOWN comes wrapped in its text)
            if time.monotonic() > deadline:
                raise
            moving = exc
        except redis.ResponseError as exc:
            if "cluster is down" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            moving = exc
        structlog.get_logger("ticketd.storage").info("redis cluster failing over",
                                                     error=repr(moving))  # fmt: skip
        time.sleep(0.25)
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            client.nodes_manager.initialize()

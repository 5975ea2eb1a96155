"""Three Ray nodes on one machine, two front ends, one worker node removed under load.

tests/test_cluster.py runs this in a subprocess (the pytest session already holds a Ray of
its own); it also runs by hand:

    .venv/bin/python tests/cluster_scenario.py --out result.json [--crash]

It builds a `ray.cluster_utils.Cluster` (head + 2 workers), an embedded Redis and two
`python -m server` front ends joined to the cluster, creates routes, books through both
front ends alternately, removes a worker node that hosts route actors while the load runs,
then audits every route's admin list. The JSON result says what happened; the exit code
is 0 when every check passed.
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
from actors.redis_server import EmbeddedRedis
from server.auth import mint

REPO = Path(__file__).resolve().parent.parent
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


def start_cluster(res: dict[str, Any], attempts: int = 3) -> Cluster:
    """Head + 2 workers, one CPU each; retried, as a node that needs more than Ray's fixed
    30 s to register (a loaded machine) fails the whole start."""
    for attempt in range(1, attempts + 1):
        try:
            cluster = Cluster(
                initialize_head=True,
                head_node_args={"num_cpus": 1, "include_dashboard": False},
            )
            try:
                for _ in range(2):
                    cluster.add_node(num_cpus=1)
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
        while not stop.is_set() and run.counter < 30_000:
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
    """Routes, load, the node failure, then settle and audit; findings go into `res`."""
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        for url, proc in zip(run.urls, procs, strict=True):
            await wait_ready(http, url, proc, 90)
        res["timings"]["front_ends_ready"] = round(time.monotonic() - args.t0, 1)
        await create_routes(http, run, args.routes)
        res["timings"]["actors_up"] = round(time.monotonic() - args.t0, 1)
        victim, moved = await fail_under_load(http, cluster, run, args, res)
        await settle(http, run, res)
        await verify(http, cluster, run, victim, moved, res)


async def create_routes(http: aiohttp.ClientSession, run: Run, count: int) -> None:
    """Create the routes and book once on each through each front end (activating it)."""
    for n in range(count):
        route = {"train": f"K{101 + n}", "date": "2026-12-01", "stations": STATIONS}
        route["coaches"] = COACHES
        async with http.post(
            f"{run.urls[0]}/v1/routes", json=route, headers=_auth("ops", True)
        ) as r:
            assert r.status == 201, await r.text()
            run.routes.append((await r.json())["route_id"])
    # first use creates each actor, both front ends racing to get-or-create it; a loaded
    # machine may take longer than a request timeout to start the workers: resend then
    rng = random.Random(1)
    warm = [new_attempt(run, rid, fe, rng) for rid in run.routes for fe in (0, 1)]
    for _ in range(3):
        todo = [a for a in warm if a.status not in OK]
        await asyncio.gather(*(book(http, run, a) for a in todo))
    run.attempts += warm
    if bad := [f"{a.route_id}: {a.status} {a.problem}" for a in warm if a.status not in OK]:
        raise RuntimeError(f"warm-up bookings failed: {bad}")


async def fail_under_load(
    http: aiohttp.ClientSession,
    cluster: Cluster,
    run: Run,
    args: argparse.Namespace,
    res: dict[str, Any],
) -> tuple[Any, list[str]]:
    """Remove the worker node hosting most actors while booking; measure the recovery."""
    info = await asyncio.to_thread(placement, run.routes, 30)
    before = {rid: i["node_id"] for rid, i in info.items()}
    res["placement_before"] = before
    res["nodes_used_before"] = len(set(before.values()))
    hosts = Counter(before.values())
    victim = max(cluster.worker_nodes, key=lambda n: hosts[n.node_id])
    moved = [rid for rid, node in before.items() if node == victim.node_id]
    victim_pids = [info[rid]["pid"] for rid in moved]
    res["removed_node"] = victim.node_id
    res["moved_routes"] = moved
    if not moved:
        raise RuntimeError("no worker node hosts a route actor")

    stop = asyncio.Event()
    loaded = time.monotonic()
    loader = asyncio.create_task(load(http, run, stop, args.clients))
    await asyncio.sleep(args.warm_seconds)
    failed = time.monotonic()
    noticed = asyncio.create_task(
        asyncio.to_thread(death_noticed, victim.node_id, failed, args.max_recovery + 10)
    )
    if args.crash:
        # a machine dying takes its actor processes with it at once; on one machine
        # they would outlive their SIGKILLed raylet for a moment and keep serving
        for pid in victim_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # allow_graceful=False: SIGKILL, as a machine dying; True: SIGTERM first, as a drain
    await asyncio.to_thread(cluster.remove_node, victim, not args.crash)
    # requests sent from here on cannot reach an old activation: its process is gone
    res["old_actors_exited"] = await asyncio.to_thread(wait_gone, victim_pids, 10)
    gone = time.monotonic()
    res["remove_node_seconds"] = round(gone - failed, 3)
    deadline = gone + args.max_recovery + 10
    while time.monotonic() < deadline and not loader.done():
        await asyncio.sleep(0.25)
        if None not in recovery(run, failed, gone).values():
            break
    await asyncio.sleep(args.tail_seconds)  # keep serving a while on the smaller cluster
    stop.set()
    await loader
    res["node_death_noticed_seconds"] = await noticed

    per_route = recovery(run, failed, gone)
    res["recovery_per_route"] = per_route
    times = list(per_route.values())
    res["recovery_seconds"] = None if None in times else max(t for t in times if t is not None)
    back = failed + (res["recovery_seconds"] or 0.0)
    res["phases"] = phases(run, loaded, failed, back, moved)
    # what clients of the moved routes saw: [sent, latency, status] relative to the failure
    res["outage_trace"] = [
        [round(a.sent - failed, 2), round(a.done - a.sent, 2), a.status]
        for a in run.attempts
        if a.route_id in moved and failed - 2 <= a.sent <= back + 1
    ]
    return victim, moved


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
    victim: Any,
    moved: list[str],
    res: dict[str, Any],
) -> None:
    """Where the actors run now; every acknowledged booking against the admin lists."""
    info = await asyncio.to_thread(placement, run.routes, 60)
    after = {rid: i["node_id"] for rid, i in info.items()}
    res["placement_after"] = after
    res["nodes_used_after"] = len(set(after.values()))
    live_nodes = {n.node_id for n in cluster.list_all_nodes()}
    res["moved_routes_now_on_survivors"] = set(after.values()) <= live_nodes
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
    unacked = [b for bs in lists[0].values() for b in bs if b["booking_id"] not in acked_ids]
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


def check(res: dict[str, Any], max_recovery: float) -> list[str]:
    """What failed, as sentences; empty when the run passed."""
    failures = []
    if res.get("nodes_used_before", 0) < 2:
        failures.append("route actors ran on fewer than 2 nodes")
    if res.get("lost", 1) != 0:
        failures.append(f"{res.get('lost')} acknowledged bookings lost or changed")
    if res.get("double_sold", 1) != 0:
        failures.append(f"{res.get('double_sold')} seat-segments sold twice")
    if res.get("duplicated", 1) != 0:
        failures.append(f"{res.get('duplicated')} requests booked twice")
    rec = res.get("recovery_seconds")
    if rec is None or rec > max_recovery:
        failures.append(f"recovery took {rec} s (limit {max_recovery} s)")
    for flag in (
        "old_actors_exited",
        "moved_routes_now_on_survivors",
        "routes_serving",
        "front_ends_agree",
    ):
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
    parser.add_argument("--clients", type=int, default=3, help="clients per route and front end")
    parser.add_argument("--warm-seconds", type=float, default=4.0, help="load before failure")
    parser.add_argument("--tail-seconds", type=float, default=3.0, help="load after recovery")
    parser.add_argument("--max-recovery", type=float, default=30.0)
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--crash", action="store_true", help="SIGKILL the node (no SIGTERM)")
    args = parser.parse_args()
    # a SIGTERM (the test giving up) unwinds through the finally below
    signal.signal(signal.SIGTERM, _terminated)
    args.t0 = time.monotonic()
    res: dict[str, Any] = {
        "mode": "crash" if args.crash else "graceful",
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
        res["leftover_processes_killed"] = kill_leftovers()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(_RAY_TMP, ignore_errors=True)
    res["elapsed_seconds"] = round(time.monotonic() - args.t0, 1)
    failures = check(res, args.max_recovery)
    if "error" in res:
        failures.insert(0, res["error"])
    res["failures"] = failures
    args.out.write_text(json.dumps(res, indent=2, sort_keys=True))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

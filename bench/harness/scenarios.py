"""The durable-booking scenarios (hop, bare, ticketd, lua, unbatched, overload), run one
server at a time, and the servers and measurements the other scenarios
(harness/sellout.py, harness/hotroute.py) share."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from actors.storage.valkey_cluster import LocalCluster, free_base_port
from harness.cpu import CPU_PARTS, cpu_by_part, cpu_seconds, front_end_workers, uvicorn_workers
from harness.paths import BENCH, ROOT
from harness.profile import profile
from harness.servers import Server, free_port, http, metrics
from harness.workload import (
    HEADROOM,
    SEATS_PER_ROUTE,
    USER_CAP,
    Result,
    lua_config,
    route_defs,
    route_id,
    wrk,
)
from server.api.auth import mint


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dir = Path(tempfile.mkdtemp(prefix="ticketd-bench-", dir=args.data_root))
        self.secret = secrets.token_urlsafe(32)
        self.users = [f"bench{u:04d}" for u in range(args.users)]
        self.tokens = [mint(self.secret, u, ttl=6 * 3600) for u in self.users]
        self.admin = mint(self.secret, "bench-admin", admin=True, ttl=6 * 3600)
        self.defs = route_defs(args.routes, args.stations)
        self.cfg = lua_config(self.dir / "wrk_config.lua", self.defs, self.tokens)
        self.servers: list[Server] = []
        self.results: dict[str, Result] = {}
        self.profiles: list[str] = []
        #: bench/hop.py's rows (None: not run), or the reason it failed
        self.hop_rows: list[dict[str, Any]] | None = None
        self.hop_error: str | None = None
        #: Redis processes the server did not start (a Valkey Cluster): counted as its own
        self.outside: list[int] = []

    # -- servers --

    def start(
        self, name: str, argv: list[str], env: dict[str, str], port: int, cwd: Path = ROOT
    ) -> Server:
        srv = Server(name, argv, env, port, self.dir / f"{name}.log", cwd)
        self.servers.append(srv)
        try:
            srv.wait_ready(self.args.ready_timeout)
        except BaseException:
            self.stop(srv)
            raise
        return srv

    def stop(self, srv: Server) -> None:
        srv.stop()
        if srv in self.servers:
            self.servers.remove(srv)

    def stop_all(self) -> None:
        for srv in list(self.servers):
            self.stop(srv)

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TICKETD_", "RAY_ADDRESS", "BENCH_"))
        }
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def ticketd(self, name: str, defs: list[dict[str, Any]] | None = None, **extra: str) -> Server:
        """ticketd started as `make run` starts it, its routes created and their actors up.

        TICKETD_WORKERS stays unset (base_env drops every TICKETD_ variable): ticketd's
        own default number of front-end workers is what is measured.
        """
        defs = self.defs if defs is None else defs
        port = free_port()
        env = self.base_env()
        env.update(
            TICKETD_HOST="127.0.0.1",
            TICKETD_PORT=str(port),
            TICKETD_DATA_DIR=str(self.dir / name),
            TICKETD_JWT_SECRET=self.secret,
            TICKETD_USER_CAP=str(USER_CAP),
            TICKETD_LOG_JSON="1",
            **extra,
        )
        for setting in self.args.ticketd_env:
            key, _, value = setting.partition("=")
            env[key] = value
        src = Path(self.args.src).resolve()
        env["PYTHONPATH"] = str(src)  # ahead of the editable install: --src picks the checkout
        srv = self.start(name, [sys.executable, "-m", "server"], env, port, cwd=src)
        for defn in defs:
            status, body = http("POST", srv.base + "/v1/routes", defn, token=self.admin)
            if status not in (200, 201):
                raise RuntimeError(f"creating route {route_id(defn)}: {status} {body[:300]!r}")
        self.activate(srv, defs)
        srv.remember_family()
        return srv

    def activate(self, srv: Server, defs: list[dict[str, Any]]) -> None:
        """Read availability on every route, so each route actor is up before the warm-up.

        A route's first call creates its Ray actor (a worker process start, seconds on a
        busy machine): that must not land in the measurement or time the warm-up out.
        Each route is read a few times more on new connections, so that every front-end
        worker has likely met it before a scenario that measures from the first request.
        """
        from concurrent.futures import ThreadPoolExecutor

        stations = defs[0]["stations"]
        again = 2 * max(1, len(front_end_workers(srv.pid)))
        query = f"availability?from={stations[0]}&to={stations[1]}"

        def one(defn: dict[str, Any]) -> str:
            url = f"{srv.base}/v1/routes/{route_id(defn)}/{query}"
            deadline = time.monotonic() + self.args.ready_timeout
            while True:
                with contextlib.suppress(OSError):
                    status, body = http("GET", url, timeout=self.args.ready_timeout)
                    if status == 200:
                        for _ in range(again):
                            http("GET", url, timeout=self.args.ready_timeout)
                        return route_id(defn)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url}: {status} {body[:300]!r}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url}: no answer within {self.args.ready_timeout:g} s")
                time.sleep(0.5)

        started = time.monotonic()
        with ThreadPoolExecutor(len(defs)) as pool:
            list(pool.map(one, defs))
        print(f"  {len(defs)} route actors up in {time.monotonic() - started:.1f} s")

    # -- measuring --

    def measure(
        self,
        res: Result,
        srv: Server,
        connections: int | None = None,
        cfg: Path | None = None,
        warmup: bool = True,
        seconds: float | None = None,
    ) -> None:
        """wrk against srv (a warm-up first, unless the scenario measures from the opening)
        for seconds (default --duration), with the CPU its processes used and how many
        served HTTP."""
        a = self.args
        cfg = self.cfg if cfg is None else cfg
        seconds = a.duration if seconds is None else seconds
        if warmup:
            print(f"  warm-up {a.warmup:g} s ...", flush=True)
            wrk(a, srv.base, cfg, f"w{res.key[:2]}", a.warmup, connections,
                self.dir / f"{res.key}-warmup.txt")  # fmt: skip
            time.sleep(0.5)
        print(f"  measuring {seconds:g} s ...", flush=True)
        served0 = self.serving(srv)
        cpu0, kids0 = cpu_by_part(srv.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        outside0 = sum(map(cpu_seconds, self.outside))
        res.run = wrk(a, srv.base, cfg, f"m{res.key[:2]}", seconds, connections,
                      self.dir / f"{res.key}-wrk.txt")  # fmt: skip
        cpu1, kids1 = cpu_by_part(srv.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        served1 = self.serving(srv)
        res.cpu = dict.fromkeys(CPU_PARTS, 0.0)
        for pid, (part, secs) in cpu1.items():
            res.cpu[part] += secs - cpu0.get(pid, (part, 0.0))[1]
        res.cpu["redis"] += sum(map(cpu_seconds, self.outside)) - outside0
        # wrk is the only child reaped while measuring
        res.cpu["wrk"] = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        # no worker processes: the main process serves HTTP itself (ticketd without
        # front-end workers, uvicorn with one worker)
        res.workers = str(len(served1)) if served1 else "1 (main process)"
        if served0 != served1:
            # a worker replaced mid-run: its CPU before it died is missing from the table
            res.notes.append(f"front-end workers changed while measuring: {served0} -> {served1}")
        r = res.run
        print(
            f"  {res.key}: {r.requests / r.seconds:,.0f} req/s, {r.created / r.seconds:,.0f} "
            f"x 201/s, p50 {r.latency_ms['p50']:.2f} ms, p99 {r.latency_ms['p99']:.2f} ms, "
            f"statuses {r.statuses}, socket errors {r.socket_errors}, workers {res.workers}",
            flush=True,
        )

    @staticmethod
    def serving(srv: Server) -> list[int]:
        """The processes below srv that serve HTTP: ticketd's workers or uvicorn's."""
        return sorted(front_end_workers(srv.pid) + uvicorn_workers(srv.pid))

    def scenario(self, key: str, label: str, fn: Any) -> Result:
        res = self.results[key] = Result(key, label)
        print(f"\n== {key}: {label}", flush=True)
        try:
            fn(res)
        except Exception as exc:
            print(f"  FAILED: {type(exc).__name__}: {exc}", flush=True)
            lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
            # one line for the table: the message and, for a crashed server, its last line
            res.error = f"{type(exc).__name__}: " + " … ".join(
                dict.fromkeys(lines[:1] + lines[-1:])
            )
        return res

    def hop(self) -> None:
        """One hop to a route actor: a Ray call against the data plane (bench/hop.py)."""
        a = self.args
        print(
            f"\n== hop: Ray actor call vs data plane, {a.routes} actors, {a.hop_seconds:g} s each"
        )
        cmd = [sys.executable, str(BENCH / "hop.py"), "--seconds", f"{a.hop_seconds:g}",
               "--actors", str(a.routes)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, env=self.base_env(),
                             timeout=3 * a.hop_seconds + 180, check=False)  # fmt: skip
        line = next((x for x in out.stdout.splitlines() if x.startswith("HOPJSON ")), None)
        if out.returncode != 0 or line is None:
            self.hop_error = (out.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  FAILED: {self.hop_error}")
            return
        self.hop_rows = json.loads(line.removeprefix("HOPJSON "))
        for row in self.hop_rows:
            print(
                f"  {row['transport']}: {row['per_second']:,.0f}/s, {row['total_us']:.0f} µs CPU "
                f"a round trip (caller {row['caller_us']:.0f}, actor {row['actor_us']:.0f})"
            )

    def bare(
        self,
        res: Result,
        cfg: Path | None = None,
        connections: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """The ceiling: bare Starlette with --server-workers uvicorn workers."""
        port = free_port()
        argv = [sys.executable, str(BENCH / "apps" / "bare.py"), "--port", str(port),
                "--workers", str(self.args.server_workers)]  # fmt: skip
        srv = self.start(res.key, argv, self.base_env(), port)
        try:
            self.measure(res, srv, connections, cfg, seconds=seconds)
        finally:
            self.stop(srv)

    def lua(
        self,
        res: Result,
        defs: list[dict[str, Any]] | None = None,
        cfg: Path | None = None,
        connections: int | None = None,
        seconds: float | None = None,
    ) -> None:
        """The Redis-Lua baseline with --server-workers uvicorn workers and one Redis."""
        port = free_port()
        routes = self.dir / f"{res.key}-routes.json"
        routes.write_text(json.dumps(self.defs if defs is None else defs))
        env = self.base_env()
        env["BENCH_JWT_SECRET"] = self.secret
        argv = [
            sys.executable, str(BENCH / "apps" / "lua_seckill.py"), "--port", str(port),
            "--data-dir", str(self.dir / res.key), "--routes", str(routes),
            "--user-cap", str(USER_CAP), "--workers", str(self.args.server_workers),
        ]  # fmt: skip
        srv = self.start(res.key, argv, env, port)
        try:
            self.measure(res, srv, connections, cfg, seconds=seconds)
        finally:
            self.stop(srv)

    def idle_cpu(self, res: Result, srv: Server, seconds: float = 3.0) -> None:
        """What the server burns with no load at all (Ray's background work, sweepers)."""
        before = cpu_by_part(srv.pid)
        time.sleep(seconds)
        used = dict.fromkeys(CPU_PARTS[:-1], 0.0)
        for pid, (part, secs) in cpu_by_part(srv.pid).items():
            used[part] += secs - before.get(pid, (part, 0.0))[1]
        res.notes.append(
            f"idle before load: {sum(used.values()) / seconds:.2f} cores "
            f"(route actors {used['route actors'] / seconds:.2f})"
        )

    def ticketd_run(
        self,
        res: Result,
        batching: bool,
        defs: list[dict[str, Any]] | None = None,
        cfg: Path | None = None,
        connections: int | None = None,
        seconds: float | None = None,
        **env: str,
    ) -> None:
        srv = self.ticketd(res.key, defs, TICKETD_BATCHING="1" if batching else "0", **env)
        try:
            self.idle_cpu(res, srv)
            before = metrics(srv)
            self.measure(res, srv, connections, cfg, seconds=seconds)
            after = metrics(srv)
            calls = after.get("ticketd_batch_size_count", 0) - before.get(
                "ticketd_batch_size_count", 0
            )
            cmds = after.get("ticketd_batch_size_sum", 0) - before.get("ticketd_batch_size_sum", 0)
            secs = after.get("ticketd_actor_call_seconds_sum", 0) - before.get(
                "ticketd_actor_call_seconds_sum", 0
            )
            acalls = after.get("ticketd_actor_call_seconds_count", 0) - before.get(
                "ticketd_actor_call_seconds_count", 0
            )
            if calls:
                res.notes.append(f"mean batch {cmds / calls:.1f} requests")
            if acalls:
                res.notes.append(f"mean actor call {1000 * secs / acalls:.1f} ms")
            if self.args.profile and cfg is None:  # the durable load only
                profile(self, res, srv)
        finally:
            self.stop(srv)

    def cluster(self, res: Result) -> None:
        """The durable load on a local Valkey Cluster (3 primaries, 3 replicas), each
        booking confirmed in a replica's AOF (TICKETD_REDIS_REPLICAS=1). The nodes are
        not the server's children: their CPU is added to its Redis part."""
        made = LocalCluster(self.dir / "valkey-cluster", free_base_port(6))
        made.start()
        self.outside = [n.proc.pid for n in made.nodes if n.proc is not None]
        try:
            res.notes.append("Valkey Cluster: 3 primaries, 3 replicas; TICKETD_REDIS_REPLICAS=1")
            self.ticketd_run(res, batching=True, TICKETD_REDIS_URL=made.url,
                             TICKETD_REDIS_REPLICAS="1")  # fmt: skip
        finally:
            self.outside = []
            made.stop()

    def overload(self, res: Result) -> None:
        a = self.args
        res.allowed = None  # judged below
        srv = self.ticketd(res.key, TICKETD_MAX_QUEUE=str(a.overload_queue))
        try:
            self.measure(res, srv, connections=a.connections * 4)
        finally:
            self.stop(srv)
        r = res.run
        assert r is not None
        refused = r.statuses.get(503, 0)
        other = r.requests - r.created - refused
        res.notes.append(
            f"{a.connections * 4} connections, TICKETD_MAX_QUEUE={a.overload_queue}: "
            f"{refused / r.seconds:,.0f} x 503/s, {r.retry_after} of {refused} with Retry-After"
        )
        # admission control works if the refusals carry Retry-After and latency stays bounded
        res.error = None
        if other or r.socket_errors:
            res.error = f"{other} answers neither 201 nor 503, {r.socket_errors} socket errors"
        elif refused == 0:
            res.notes.append("no 503: the queue never filled (raise --overload-connections)")
        elif r.retry_after != refused:
            res.error = "some 503 answers lack Retry-After"

    # -- capacity --

    def check_capacity(self, ceiling: float) -> None:
        a = self.args
        seconds = a.warmup + a.duration + (a.profile_seconds + 4 if a.profile else 0)
        # the overload scenario books at most as fast as plain ticketd: same bound
        expected = ceiling * HEADROOM * seconds
        segments = a.stations - 1
        per_cell = expected / (a.routes * segments)
        per_user = expected / (a.routes * a.users)
        print(
            f"capacity: {a.routes} routes x {segments} segments x {SEATS_PER_ROUTE} seats = "
            f"{a.routes * segments * SEATS_PER_ROUTE:,} one-segment bookings per server; "
            f"plan for <= {expected:,.0f} ({ceiling:,.0f}/s x {HEADROOM} x {seconds:g} s)"
        )
        if per_cell > SEATS_PER_ROUTE:
            raise SystemExit(
                f"routes could sell out ({per_cell:,.0f} bookings per route-segment > "
                f"{SEATS_PER_ROUTE}): raise --stations (max 64) or --routes, or lower --duration"
            )
        if per_user > USER_CAP:
            raise SystemExit(f"users would hit the cap of {USER_CAP}: raise --users")

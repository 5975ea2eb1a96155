"""HTTP booking throughput of ticketd against a bare Starlette ceiling and a Redis-Lua baseline.

One command measures, on this machine, first one hop to an actor (bench/hop.py: a
Ray actor call against ticketd's direct data plane, CPU per round trip on both
sides), then with wrk at the same connection count:

  1. bare      a bare Starlette endpoint, same requests (the ceiling)
  2. ticketd   durable bookings: batching front end -> route actors -> Redis AOF fsync always
  3. lua       "classic Python seckill" baseline: Starlette + one Redis Lua script per request
  4. unbatched ticketd with TICKETD_BATCHING=0 (one data-plane request per HTTP request)
  5. overload  ticketd with a tiny TICKETD_MAX_QUEUE and 4x the connections: admission
               control answers 503 overloaded with Retry-After at once

Every booking request is new (unique Idempotency-Key and passenger id) and
books one seat for a one-segment trip on one of --routes routes; routes are
sized so nothing sells out (checked before the run against the measured
ceiling, and after it: every answer must be 201). Each server runs as its own
process with one uvicorn worker (uvloop + httptools) on loopback, gets a
--warmup run first, and is stopped at the end. The table goes to stdout and
into docs/benchmarks.md (section between the throughput markers).

    .venv/bin/python bench/throughput.py --duration 15 --connections 64
    .venv/bin/python bench/throughput.py --profile reports/profile   # also py-spy ticketd

Needs wrk (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`)
and, for --profile, py-spy (`.venv/bin/uv pip install --python .venv/bin/python
py-spy==0.4.3`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # server.api.auth for tokens, even without the editable install

from server.api.auth import mint  # noqa: E402

BENCH = ROOT / "bench"
LUA = BENCH / "wrk" / "booking.lua"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/throughput.py: begin (generated; rerun the command to replace) -->"
END = "<!-- bench/throughput.py: end -->"

CLASS = "second"
SEATS_PER_ROUTE = 5000  # the route limit: 40 coaches x 25 rows x ABCDF
USER_CAP = 1000  # TICKETD_USER_CAP's maximum
HEADROOM = 1.25  # plan capacity for 1.25x the measured ceiling


# ---- processes ---------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    """Every live process below pid (Linux /proc)."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time (None if gone or a zombie): with the pid, its identity."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CPU_PARTS = ["front end", "route actors", "redis", "ray other", "wrk"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 if gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK


def cpu_by_part(root: int) -> dict[int, tuple[str, float]]:
    """CPU used so far by root (the server) and each of its descendants, by part."""
    out = {root: ("front end", cpu_seconds(root))}
    for pid in descendants(root):
        cmd = cmdline(pid)
        if "RouteActor" in cmd:
            part = "route actors"
        elif "valkey-server" in cmd or "redis-server" in cmd:
            part = "redis"
        else:
            part = "ray other"  # raylet, GCS, idle workers, agents
        out[pid] = (part, cpu_seconds(pid))
    return out


class Server:
    """One server process in its own session, stopped (and its descendants) at the end."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self.base = f"http://127.0.0.1:{port}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._family: dict[int, str | None] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http("GET", self.base + "/readyz", timeout=2)[0] == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready within {timeout:g} s:\n{self.tail()}")

    def remember_family(self) -> None:
        """Note descendants (Redis, Ray) now, so stop() can reap any that outlive the server."""
        for pid in descendants(self.pid):
            self._family[pid] = _start_time(pid)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        self.remember_family()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # ticketd stops its Ray and Redis itself
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(f"  {self.name}: no exit after SIGTERM in {grace:g} s; SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
        self.proc.wait(10)
        time.sleep(0.5)
        reaped = []
        for pid, started in self._family.items():
            if started is not None and _start_time(pid) == started:  # same process, still alive
                name = cmdline(pid)[:60]
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    reaped.append(f"{pid} {name}")
        if reaped:
            print(f"  {self.name}: killed what it left behind: {'; '.join(reaped)}")


def http(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---- workload ----------------------------------------------------------------------


def route_defs(routes: int, stations: int) -> list[dict[str, Any]]:
    """`routes` routes of `stations` stations and 5,000 seats of one class each."""
    coaches = [
        {"number": f"{c + 1:02d}", "class": CLASS, "rows": 25, "letters": "ABCDF"}
        for c in range(40)
    ]
    return [
        {
            "train": f"B{k + 1}",
            "date": "2026-12-01",
            "stations": [f"S{s:02d}" for s in range(stations)],
            "coaches": coaches,
        }
        for k in range(routes)
    ]


def route_id(defn: dict[str, Any]) -> str:
    return f"{defn['train']}-{defn['date'].replace('-', '')}"


def lua_config(path: Path, defs: list[dict[str, Any]], tokens: list[str]) -> Path:
    def lua_list(items: list[str]) -> str:
        return "{" + ",".join(json.dumps(x) for x in items) + "}"

    paths = [f"/v1/routes/{route_id(d)}/bookings" for d in defs]
    path.write_text(
        "return {\n"
        f"  paths = {lua_list(paths)},\n"
        f"  stations = {lua_list(defs[0]['stations'])},\n"
        f"  class = {json.dumps(CLASS)},\n"
        f"  tokens = {lua_list(tokens)},\n"
        "}\n"
    )
    return path


@dataclass
class Run:
    """One wrk measurement."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    retry_after: int
    raw: str

    @property
    def created(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def non201(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != 201)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def wrk(
    args: argparse.Namespace,
    base: str,
    cfg: Path,
    tag: str,
    seconds: float,
    connections: int | None = None,
    log: Path | None = None,
) -> Run:
    conns = connections or args.connections
    cmd = [
        args.wrk, f"-t{min(args.threads, conns)}", f"-c{conns}", f"-d{seconds:g}s", "--latency",
        f"--timeout={args.timeout:g}s", "-s", str(LUA), base, "--", str(cfg), tag,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if log is not None:
        log.write_text(shlex.join(cmd) + "\n" + out.stdout + out.stderr)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    lat = {k: v / 1000 for k, v in data["latency_us"].items()}
    # cross-check against wrk's own --latency table (its p50/p99 use the same histogram)
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out.stdout, re.M):
        ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        lat[f"wrk_p{pct}"] = ms
    return Run(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        statuses={int(k): v for k, v in data["statuses"].items()},
        errors=data["errors"],
        latency_ms=lat,
        retry_after=data["retry_after"],
        raw=out.stdout,
    )


# ---- scenarios ---------------------------------------------------------------------


@dataclass
class Result:
    key: str
    label: str
    run: Run | None = None
    notes: list[str] = field(default_factory=list)
    expect_all_201: bool = True
    error: str | None = None
    #: CPU seconds used during the measurement, by part (see CPU_PARTS)
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.run.created / self.run.seconds if self.run else 0.0

    @property
    def ok(self) -> bool:
        if self.error or self.run is None:
            return False
        if self.run.requests == 0:
            return False
        if self.expect_all_201:
            return self.run.non201 == 0 and self.run.socket_errors == 0
        return True


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

    def ticketd(self, name: str, **extra: str) -> Server:
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
        src = Path(self.args.src).resolve()
        env["PYTHONPATH"] = str(src)  # ahead of the editable install: --src picks the checkout
        srv = self.start(name, [sys.executable, "-m", "server"], env, port, cwd=src)
        for defn in self.defs:
            status, body = http("POST", srv.base + "/v1/routes", defn, token=self.admin)
            if status not in (200, 201):
                raise RuntimeError(f"creating route {route_id(defn)}: {status} {body[:300]!r}")
        self.activate(srv)
        srv.remember_family()
        return srv

    def activate(self, srv: Server) -> None:
        """Read availability on every route, so each route actor is up before the warm-up.

        A route's first call creates its Ray actor (a worker process start, seconds on a
        busy machine): that must not land in the measurement or time the warm-up out.
        """
        from concurrent.futures import ThreadPoolExecutor

        stations = self.defs[0]["stations"]
        query = f"availability?from={stations[0]}&to={stations[1]}"

        def one(defn: dict[str, Any]) -> str:
            url = f"{srv.base}/v1/routes/{route_id(defn)}/{query}"
            deadline = time.monotonic() + self.args.ready_timeout
            while True:
                with contextlib.suppress(OSError):
                    status, body = http("GET", url, timeout=self.args.ready_timeout)
                    if status == 200:
                        return route_id(defn)
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{url}: {status} {body[:300]!r}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url}: no answer within {self.args.ready_timeout:g} s")
                time.sleep(0.5)

        started = time.monotonic()
        with ThreadPoolExecutor(len(self.defs)) as pool:
            list(pool.map(one, self.defs))
        print(f"  {len(self.defs)} route actors up in {time.monotonic() - started:.1f} s")

    # -- measuring --

    def measure(self, res: Result, srv: Server, connections: int | None = None) -> None:
        a = self.args
        print(f"  warm-up {a.warmup:g} s ...", flush=True)
        wrk(a, srv.base, self.cfg, f"w{res.key[:2]}", a.warmup, connections,
            self.dir / f"{res.key}-warmup.txt")  # fmt: skip
        time.sleep(0.5)
        print(f"  measuring {a.duration:g} s ...", flush=True)
        cpu0, kids0 = cpu_by_part(srv.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        res.run = wrk(a, srv.base, self.cfg, f"m{res.key[:2]}", a.duration, connections,
                      self.dir / f"{res.key}-wrk.txt")  # fmt: skip
        cpu1, kids1 = cpu_by_part(srv.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
        res.cpu = dict.fromkeys(CPU_PARTS, 0.0)
        for pid, (part, secs) in cpu1.items():
            res.cpu[part] += secs - cpu0.get(pid, (part, 0.0))[1]
        # wrk is the only child reaped while measuring
        res.cpu["wrk"] = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
        r = res.run
        print(
            f"  {res.key}: {r.requests / r.seconds:,.0f} req/s, {res.rate:,.0f} x 201/s, "
            f"p50 {r.latency_ms['p50']:.2f} ms, p99 {r.latency_ms['p99']:.2f} ms, "
            f"statuses {r.statuses}, socket errors {r.socket_errors}",
            flush=True,
        )

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

    def bare(self, res: Result) -> None:
        port = free_port()
        srv = self.start("bare", [sys.executable, str(BENCH / "apps" / "bare.py"), "--port",
                                  str(port)], self.base_env(), port)  # fmt: skip
        try:
            self.measure(res, srv)
        finally:
            self.stop(srv)

    def lua(self, res: Result) -> None:
        port = free_port()
        routes = self.dir / "routes.json"
        routes.write_text(json.dumps(self.defs))
        env = self.base_env()
        env["BENCH_JWT_SECRET"] = self.secret
        argv = [
            sys.executable, str(BENCH / "apps" / "lua_seckill.py"), "--port", str(port),
            "--data-dir", str(self.dir / "lua"), "--routes", str(routes),
            "--user-cap", str(USER_CAP),
        ]  # fmt: skip
        srv = self.start("lua", argv, env, port)
        try:
            self.measure(res, srv)
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

    def ticketd_run(self, res: Result, batching: bool) -> None:
        srv = self.ticketd(res.key, TICKETD_BATCHING="1" if batching else "0")
        try:
            self.idle_cpu(res, srv)
            before = metrics(srv)
            self.measure(res, srv)
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
            if self.args.profile:
                self.profile(res, srv)
        finally:
            self.stop(srv)

    def overload(self, res: Result) -> None:
        a = self.args
        res.expect_all_201 = False
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

    def profile(self, res: Result, srv: Server) -> None:
        """py-spy the front end and one route actor under the same load."""
        a = self.args
        out = Path(a.profile)
        out.mkdir(parents=True, exist_ok=True)
        actors = [p for p in descendants(srv.pid) if "RouteActor" in cmdline(p)]
        targets = {"server": srv.pid}
        if actors:
            targets["actor"] = actors[0]
        secs = a.profile_seconds
        print(f"  profiling {secs:g} s: {targets} ...", flush=True)
        load = subprocess.Popen(
            [a.wrk, f"-t{a.threads}", f"-c{a.connections}", f"-d{secs + 4:g}s",
             f"--timeout={a.timeout:g}s", "-s", str(LUA), srv.base, "--", str(self.cfg),
             f"p{res.key[:2]}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            time.sleep(2)
            spies = {
                name: subprocess.Popen(
                    py_spy_argv(a.py_spy, pid, secs, out / f"{res.key}-{name}.txt"),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for name, pid in targets.items()
            }
            for name, spy in spies.items():
                _, err = spy.communicate(timeout=secs + 60)
                if spy.returncode != 0:
                    print(f"  py-spy {name} failed: {err.strip()[-500:]}")
        finally:
            text, _ = load.communicate(timeout=secs + 60)
        line = next((x for x in text.splitlines() if x.startswith("WRKJSON ")), "")
        if line:
            data = json.loads(line.removeprefix("WRKJSON "))
            non201 = sum(v for k, v in data["statuses"].items() if k != "201")
            print(
                f"  under the profiler: {data['statuses'].get('201', 0) / secs:,.0f} x 201/s "
                f"(approx.), non-201 {non201}"
            )
            if non201 and res.error is None:
                res.error = f"{non201} non-201 answers during profiling"
        from pyspy_summary import summarise

        for name in targets:
            path = out / f"{res.key}-{name}.txt"
            if path.exists():
                summary = summarise(path, top=15, seconds=secs)
                (out / f"{res.key}-{name}-summary.txt").write_text(summary)
                self.profiles.append(summary)
                print(summary)

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


def py_spy_argv(py_spy: str, pid: int, seconds: float, output: Path) -> list[str]:
    """Sample only threads holding the GIL (--gil): Python's own CPU time, where a
    process's idle threads (Ray keeps several) would otherwise blur the picture."""
    return [
        py_spy, "record", "--pid", str(pid), "--duration", f"{seconds:g}", "--rate", "100",
        "--gil", "--nonblocking", "--format", "raw", "--nolineno", "--output", str(output),
    ]  # fmt: skip


def metrics(srv: Server) -> dict[str, float]:
    status, body = http("GET", srv.base + "/metrics")
    out: dict[str, float] = {}
    if status != 200:
        return out
    for line in body.decode().splitlines():
        if line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


# ---- report ------------------------------------------------------------------------


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"nproc {cores}, {model or platform.processor() or 'unknown CPU'}{mem}, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def source(src: Path) -> str:
    """Which ticketd ran: the checkout's commit, and whether server/ or actors/ had edits."""
    git = ["git", "-C", str(src)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    if head.returncode != 0:
        return f"`{src}` (not a git checkout)"
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "server", "actors"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    where = "" if src.resolve() == ROOT else f" in `{src}`"
    return f"commit {head.stdout.strip()}{where}" + (
        " with uncommitted changes in server/ or actors/" if dirty else ""
    )


def fs_type(path: Path) -> str:
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if str(path).startswith(mount) and len(mount) > len(best):
                best, kind = mount, parts[2]
    return kind


ORDER = ["bare", "ticketd", "lua", "unbatched", "overload"]
#: not a wrk scenario: bench/hop.py, one round trip to an actor, Ray call vs data plane
HOP = "hop"


def table(results: dict[str, Result]) -> list[str]:
    bare = results.get("bare")
    ceiling = bare.rate if bare and bare.run else 0.0
    rows = [
        "| scenario | 201/s | p50 ms | p99 ms | vs bare | non-201 | socket errors | notes |",
        "|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for key in ORDER:
        res = results.get(key)
        if res is None:
            continue
        if res.run is None:
            rows.append(f"| {res.label} | – | – | – | – | – | – | FAILED: {res.error} |")
            continue
        r = res.run
        others = {c: n for c, n in sorted(r.statuses.items()) if c != 201}
        non = f"{r.non201:,}" + (f" {others}" if others else "")
        ratio = f"{res.rate / ceiling:.2f}" if ceiling else "–"
        notes = "; ".join(res.notes + ([f"FAILED: {res.error}"] if res.error else []))
        rows.append(
            f"| {res.label} | {res.rate:,.0f} | {r.latency_ms['p50']:.2f} | "
            f"{r.latency_ms['p99']:.2f} | {ratio} | {non} | {r.socket_errors} | {notes} |"
        )
    return rows


def cpu_table(results: dict[str, Result]) -> list[str]:
    """Where the CPU went while measuring: cores busy, and CPU microseconds per 201."""
    rows = [
        "| scenario | cores busy | CPU µs per 201 | "
        + " | ".join(f"{p} µs" for p in CPU_PARTS)
        + " |",
        "|---|--:|--:|" + "--:|" * len(CPU_PARTS),
    ]
    for key in ORDER:
        res = results.get(key)
        if res is None or res.run is None or not res.cpu or not res.run.created:
            continue
        n, secs = res.run.created, res.run.seconds
        total = sum(v for k, v in res.cpu.items() if k != "wrk")
        per = [f"{1e6 * res.cpu.get(p, 0.0) / n:,.0f}" for p in CPU_PARTS]
        rows.append(
            f"| {res.label} | {(total + res.cpu.get('wrk', 0.0)) / secs:.2f} | "
            f"{1e6 * total / n:,.0f} | " + " | ".join(per) + " |"
        )
    return rows


def targets(results: dict[str, Result], p99_limit: float) -> list[str]:
    def rate(key: str) -> float | None:
        res = results.get(key)
        return res.rate if res is not None and res.run is not None else None

    out = []
    bare, td, lua, unb = rate("bare"), rate("ticketd"), rate("lua"), rate("unbatched")

    def line(name: str, value: float | None, goal: float, fmt: str, higher: bool = True) -> None:
        if value is None:
            out.append(f"- {name}: not measured")
            return
        met = value >= goal if higher else value <= goal
        out.append(f"- {name}: {fmt.format(value)} (target {fmt.format(goal)}): "
                   f"{'met' if met else 'MISSED'}")  # fmt: skip

    line("durable ticketd / bare", td / bare if td and bare else None, 0.5, "{:.2f}x")
    tres = results.get("ticketd")
    p99 = tres.run.latency_ms["p99"] if tres and tres.run else None
    line("ticketd p99", p99, p99_limit, "{:.1f} ms", higher=False)
    line("batched / unbatched", td / unb if td and unb else None, 4.0, "{:.2f}x")
    line("ticketd / Starlette+Lua", td / lua if td and lua else None, 1.5, "{:.2f}x")
    return out


def write_docs(path: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Put section between the begin and end markers of path (appended if they are absent)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{section.rstrip()}\n{end}"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def render(args: argparse.Namespace, bench: Bench, command: str, started: dt.datetime,
           load: tuple[float, float, float], wrk_version: str) -> str:  # fmt: skip
    res = bench.results
    lines = [
        "## HTTP booking throughput (`bench/throughput.py`)",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}; {wrk_version}; load average before the run "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        f"- command: `{command}`",
        f"- load: wrk, {args.connections} connections, {args.threads} thread(s), "
        f"{args.warmup:g} s warm-up then {args.duration:g} s measured per server; every request "
        f"a new one-passenger booking (unique Idempotency-Key and passenger id) for a "
        f"one-segment trip, spread evenly over {args.routes} routes x {args.stations - 1} "
        f"segments (5,000 seats each: nothing sells out) and {args.users} users",
        "- durability: ticketd and the Lua baseline each run a private Redis with AOF and "
        f"`appendfsync always`, data on {fs_type(bench.dir)}",
    ]
    lines.append(f"- ticketd code: {source(Path(args.src))}")
    if args.note:
        lines.append(f"- note: {args.note}")
    if bench.hop_rows is not None or bench.hop_error:
        from hop import table as hop_table

        lines += [
            "",
            f"One hop to an actor (`bench/hop.py --seconds {args.hop_seconds:g} --actors "
            f"{args.routes}`): an asyncio driver keeps one request in flight to each of "
            f"{args.routes} actors that answer at once; CPU of the driver and the actors per "
            "round trip:",
            "",
            *(hop_table(bench.hop_rows) if bench.hop_rows else [f"FAILED: {bench.hop_error}"]),
        ]
    lines += [
        "",
        *table(res),
        "",
        "201/s counts acknowledged bookings only; p50/p99 are wrk's latency over all answers. "
        "Scenarios: *bare* — Starlette endpoint that reads the body and answers 201 "
        "(the ceiling); *ticketd* — `python -m server`, batching on; *Starlette + Redis Lua* "
        "— `bench/apps/lua_seckill.py`, one Lua script per request, no actors (comparison "
        "only); *unbatched* — ticketd with `TICKETD_BATCHING=0`; *overload* — ticketd with "
        f"`TICKETD_MAX_QUEUE={args.overload_queue}` at {args.connections * 4} connections "
        "(503 `overloaded` with Retry-After is the expected answer there).",
        "",
        "CPU while measuring (from /proc, all processes of each server: the front end, its "
        "route actors, its Redis, the rest of its local Ray; wrk separately). *cores busy* "
        "includes wrk; *CPU µs per 201* is the server's CPU (without wrk) per acknowledged "
        "booking, which bounds the rate on a quiet machine at about "
        "cores / (CPU per booking):",
        "",
        *cpu_table(res),
        "",
        "Targets:",
        *targets(res, args.p99_limit),
    ]
    return "\n".join(lines) + "\n"


# ---- main --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--timeout", type=float, default=5, help="wrk request timeout (s)")
    parser.add_argument("--routes", type=int, default=8)
    parser.add_argument("--stations", type=int, default=32, help="stations per route (<= 64)")
    parser.add_argument("--users", type=int, default=1001, help="distinct users (tokens)")
    parser.add_argument(
        "--scenarios",
        default=",".join([HOP, *ORDER]),
        help=f"comma-separated subset of {[HOP, *ORDER]}",
    )
    parser.add_argument("--overload-queue", type=int, default=8, help="TICKETD_MAX_QUEUE there")
    parser.add_argument("--hop-seconds", type=float, default=5, help="per transport, hop scenario")
    parser.add_argument("--p99-limit", type=float, default=50.0, help="ms, for the target line")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--data-root", default=None, help="where servers keep data (a disk)")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="py-spy ticketd's front end and one route actor into DIR")  # fmt: skip
    parser.add_argument("--profile-seconds", type=float, default=15)
    parser.add_argument("--docs", default=str(DOCS), help="markdown file to update")
    parser.add_argument("--no-docs", action="store_true", help="do not touch the docs file")
    parser.add_argument("--note", default="", help="a remark to print with the results")
    parser.add_argument(
        "--src", default=str(ROOT), help="ticketd checkout to run (default: this one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data/log directory")
    args = parser.parse_args()

    scen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scen) - {*ORDER, HOP}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {[*ORDER, HOP]}")
    if not 2 <= args.stations <= 64 or not 1 <= args.routes <= 64:
        parser.error("--stations must be 2..64 and --routes 1..64")
    args.wrk = shutil.which("wrk")
    if args.wrk is None:
        print(
            "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu, as "
            "root) or `brew install wrk` (macOS), then rerun.",
            file=sys.stderr,
        )
        return 2
    if args.profile:
        args.py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.access(args.py_spy, os.X_OK):
            print(
                "py-spy is not installed: `.venv/bin/uv pip install --python .venv/bin/python "
                "py-spy==0.4.3`",
                file=sys.stderr,
            )
            return 2
    wrk_version = (
        subprocess.run([args.wrk, "-v"], capture_output=True, text=True, check=False)
        .stdout.splitlines()[0]
        .split(" [")[0]
    )
    shown = list(sys.argv[1:])
    for opt in ("--note",):  # printed on a line of its own
        while opt in shown:
            at = shown.index(opt)
            del shown[at : at + 2]
    shown = [a for a in shown if not a.startswith("--note=")]
    command = shlex.join(
        [".venv/bin/python", "bench/throughput.py", *shown]
        if Path(sys.executable).parent == ROOT / ".venv" / "bin"
        else [Path(sys.executable).name, sys.argv[0], *shown]
    )
    started = dt.datetime.now(dt.UTC)
    load = os.getloadavg()

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    bench = Bench(args)
    kind = fs_type(bench.dir)
    print(f"data and logs in {bench.dir} ({kind}); load average {load[0]:.2f}")
    if kind in ("tmpfs", "ramfs"):
        print("WARNING: fsync is free on tmpfs: durable numbers are flattered; use --data-root")
    try:
        ceiling = 0.0
        bench.check_capacity(20_000.0)  # fail fast, before any server starts
        if HOP in scen:
            bench.hop()
        if "bare" in scen:
            bare = bench.scenario("bare", "bare Starlette (ceiling)", bench.bare)
            ceiling = bare.rate
        # a noisy ceiling must not under-size the routes: plan for at least 20k/s
        bench.check_capacity(max(ceiling, 20_000.0))
        if "ticketd" in scen:
            bench.scenario("ticketd", "ticketd, durable, batched",
                           lambda r: bench.ticketd_run(r, batching=True))  # fmt: skip
        if "lua" in scen:
            bench.scenario("lua", "Starlette + Redis Lua (baseline)", bench.lua)
        if "unbatched" in scen:
            bench.scenario("unbatched", "ticketd, TICKETD_BATCHING=0",
                           lambda r: bench.ticketd_run(r, batching=False))  # fmt: skip
        if "overload" in scen:
            bench.scenario("overload", "ticketd overload (admission control)", bench.overload)
    except KeyboardInterrupt:
        print("interrupted: stopping servers")
    finally:
        bench.stop_all()

    section = render(args, bench, command, started, load, wrk_version)
    print("\n" + section)
    if not args.no_docs:
        write_docs(Path(args.docs), section)
        print(f"written to {args.docs}")
    failed = [k for k, r in bench.results.items() if not r.ok]
    if args.keep or failed:
        print(f"logs kept in {bench.dir}")
    else:
        shutil.rmtree(bench.dir, ignore_errors=True)
    if failed:
        print(f"FAILED scenarios: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

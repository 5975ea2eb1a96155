"""Search throughput: GET /v1/search against GET /healthz on the same ticketd, with wrk.

One ticketd (one uvicorn worker, local Ray) on a Redis this script starts (so
it can count actor activations), --routes routes on one date of which
--serving stop at A and later at B (as many again run B -> A, and the rest
miss the pair), a few bookings on some serving routes (their actors start:
that is booking, not search). Then, alternating on the same server with the
same wrk settings: /healthz, /v1/search?from=A&to=B&date=D, /healthz, search.

Passes when the search rate is ≥ --ratio × the /healthz rate (mean of its
runs), search p99 ≤ --p99-ms, every answer is 200, and no route actor
activation happened during the searches (every activation takes an epoch in
Redis: the count of epoch keys and their sum must not move). The result goes
to stdout and into docs/benchmarks.md (between the search markers).

    .venv/bin/python bench/search_bench.py --duration 10 --connections 64

Needs wrk (Debian/Ubuntu: `apt-get install -y wrk`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from harness.paths import ROOT
from harness.report import machine, source, write_docs
from harness.servers import Server, free_port, http

from actors.storage.redis_server import EmbeddedRedis
from server.api.auth import mint

DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/search_bench.py: begin (generated; rerun the command to replace) -->"
END = "<!-- bench/search_bench.py: end -->"
DATE = "2026-12-01"
FROM, TO = "Beijing South", "Shanghai Hongqiao"


def route_defs(routes: int, serving: int, stations: int, seed: int) -> list[dict[str, Any]]:
    """`serving` routes A ... B, as many B ... A, the rest without the pair (some with A)."""
    rng = random.Random(seed)
    pool = [f"Station {n:02d}" for n in range(40)]
    coaches = [{"number": "01", "class": "business", "rows": 5, "letters": "ACF"}]
    coaches += [{"number": f"{n:02d}", "class": "second", "rows": 20, "letters": "ABCDF"}
                for n in range(2, 9)]  # fmt: skip
    out = []
    for n in range(routes):
        middle = rng.sample(pool, stations - 2)
        if n < 2 * serving:
            i, j = sorted(rng.sample(range(stations), 2))
            stops = middle[:]
            stops.insert(i, FROM)
            stops.insert(j, TO)
            if n >= serving:
                stops.reverse()  # the other direction: stops at both, never a hit
        else:
            stops = rng.sample(pool, stations - 1) + ([FROM] if n % 4 == 0 else [])
            rng.shuffle(stops)
        out.append({"train": f"G{n + 1:04d}", "date": DATE, "stations": stops, "coaches": coaches})
    return out


@dataclass
class Run:
    path: str
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    socket_errors: int


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(args: argparse.Namespace, url: str, seconds: float, log: Path) -> Run:
    cmd = [args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s",
           "--latency", "--timeout=10s", url]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    log.write_text(" ".join(cmd) + "\n" + out.stdout + out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    text = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    lat = dict(
        (pct, _ms(v, u))
        for pct, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)", text, re.M)
    )
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return Run(
        path=urllib.parse.urlsplit(url).path,
        rate=rate,
        p50_ms=lat["50"],
        p99_ms=lat["99"],
        requests=requests,
        non2xx=int(non.group(1)) if non else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


def activations(client: redis.Redis) -> tuple[int, int]:
    """(routes ever activated, activations in all): every activation INCRs an epoch key."""
    names = list(client.scan_iter(match="ticketd:{*}:epoch", count=1000))
    values = client.mget(names) if names else []
    return len(names), sum(int(v) for v in values if v is not None)  # type: ignore[union-attr]


def _load() -> str:
    """The 1-minute load average: the machine is shared, and it tells how quiet it was."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--routes", type=int, default=200)
    p.add_argument("--serving", type=int, default=20, help="routes running A -> B")
    p.add_argument("--stations", type=int, default=12, help="stations per route")
    p.add_argument("--booked", type=int, default=5, help="serving routes given bookings first")
    p.add_argument("--rounds", type=int, default=2, help="pairs of /healthz, search runs")
    p.add_argument("--ratio", type=float, default=0.6)
    p.add_argument("--p99-ms", type=float, default=30.0)
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    p.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = p.parse_args()
    if not Path(args.wrk).exists() and shutil.which(args.wrk) is None:
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="ticketd-search-bench-"))
    store = EmbeddedRedis(work / "redis")
    (work / "redis").mkdir()
    store.start()
    srv: Server | None = None
    try:
        secret = secrets.token_hex(32)
        admin = mint(secret, "ops", True)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETD_")}
        env.update(
            PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), TICKETD_HOST="127.0.0.1",
            TICKETD_PORT=str(port), TICKETD_DATA_DIR=str(work / "data"),
            TICKETD_JWT_SECRET=secret, TICKETD_REDIS_URL=store.url, TICKETD_LOG_JSON="1",
        )  # fmt: skip
        srv = Server("ticketd", [sys.executable, "-m", "server"], env, port,
                     work / "ticketd.log", ROOT)  # fmt: skip
        srv.wait_ready(120)
        srv.remember_family()
        defs = route_defs(args.routes, args.serving, args.stations, seed=13)
        for d in defs:
            status, body = http("POST", srv.base + "/v1/routes", d, token=admin)
            assert status == 201, (status, body[:300])
        serving = [f"{d['train']}-{DATE.replace('-', '')}" for d in defs[: args.serving]]
        for n, rid in enumerate(serving[: args.booked]):
            d = defs[n]
            for k in range(3):
                body = {"from": d["stations"][0], "to": d["stations"][-1], "class": "second",
                        "passengers": [{"name": "P", "id": f"b{n}x{k}"}]}  # fmt: skip
                req = urllib.request.Request(
                    srv.base + f"/v1/routes/{rid}/bookings", data=json.dumps(body).encode(),
                    method="POST", headers={"Authorization": f"Bearer {mint(secret, f'u{k}')}",
                    "Idempotency-Key": f"k{n}-{k}", "Content-Type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(req, timeout=60) as resp:
                    assert resp.status == 201
        query = urllib.parse.urlencode({"from": FROM, "to": TO, "date": DATE})
        search_url, health_url = f"{srv.base}/v1/search?{query}", f"{srv.base}/healthz"
        status, raw = http("GET", search_url)
        answer = json.loads(raw)
        assert status == 200 and sorted(t["route_id"] for t in answer["trains"]) == sorted(
            serving
        ), raw[:500]
        client = redis.Redis.from_url(store.url)
        before = activations(client)

        load_before = _load()
        runs: list[Run] = []
        wrk(args, health_url, args.warmup, work / "warmup-healthz.txt")
        wrk(args, search_url, args.warmup, work / "warmup-search.txt")
        for n, url in enumerate([health_url, search_url] * args.rounds):
            time.sleep(0.5)
            print(f"  wrk {urllib.parse.urlsplit(url).path} {args.duration:g} s ...", flush=True)
            runs.append(wrk(args, url, args.duration, work / f"run{n}.txt"))
        after = activations(client)
        load_after = _load()
        client.close()
    finally:
        if srv is not None:
            srv.stop()
        store.stop()

    health = [r for r in runs if r.path == "/healthz"]
    search = [r for r in runs if r.path == "/v1/search"]
    h_rate = sum(r.rate for r in health) / len(health)
    s_rate = sum(r.rate for r in search) / len(search)
    s_p99 = max(r.p99_ms for r in search)
    s_p99_median = statistics.median(r.p99_ms for r in search)
    clean = all(r.non2xx == 0 and r.socket_errors == 0 for r in runs)
    passed = s_rate >= args.ratio * h_rate and s_p99 <= args.p99_ms and clean and before == after
    seats = sum(c["rows"] * len(c["letters"]) for c in route_defs(1, 1, 3, 0)[0]["coaches"])
    cmd = "python bench/search_bench.py " + " ".join(sys.argv[1:])
    lines = [
        "## Search throughput (`bench/search_bench.py`)",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine()}; {source(ROOT)}.",
        f"Command: `{cmd.strip()}` (wrk -t{args.threads} -c{args.connections}, "
        f"{args.duration:g} s per run, runs alternating on one server).",
        f"Workload: {args.routes} routes on {DATE}, {args.serving} of them from {FROM} to "
        f"{TO} ({args.serving} more the other way), {args.stations} stations and {seats} seats "
        f"each; {args.booked} serving routes have bookings (their actors run), the other "
        f"{args.routes - args.booked} are cold. Refresh interval 0.25 s (the default). "
        f"Load average (1 min) of the shared machine: {load_before} before the runs, "
        f"{load_after} after.",
        "",
        "| run | path | req/s | p50 ms | p99 ms | non-2xx | socket errors |",
        "|--:|---|--:|--:|--:|--:|--:|",
    ]
    for n, r in enumerate(runs, 1):
        lines.append(f"| {n} | `{r.path}` | {r.rate:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | "
                     f"{r.non2xx} | {r.socket_errors} |")  # fmt: skip
    lines += [
        "",
        f"Search {s_rate:,.0f}/s = **{s_rate / h_rate:.2f} × /healthz** ({h_rate:,.0f}/s; "
        f"target ≥ {args.ratio}), worst search p99 **{s_p99:.1f} ms** (median of the runs "
        f"{s_p99_median:.1f} ms; target ≤ "
        f"{args.p99_ms:g}; /healthz's worst p99 on the same server: "
        f"{max(r.p99_ms for r in health):.1f} ms); route activations during the searches: "
        f"**{after[1] - before[1]}** ({before[0]} routes ever activated before, {after[0]} "
        f"after). {'PASS' if passed else 'FAIL'}.",
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_docs:
        write_docs(DOCS, section, BEGIN, END)
    with contextlib.suppress(OSError):
        shutil.rmtree(work)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

"""HTTP booking throughput of ticketd against a bare Starlette ceiling and a Redis-Lua baseline.

One command measures, on this machine, first one hop to an actor (bench/hop.py: a
Ray actor call against ticketd's direct data plane, CPU per round trip on both
sides), then with wrk, like for like:

durable bookings (--connections, --routes routes, one-segment trips):
  1. bare      a bare Starlette endpoint, same requests (the ceiling)
  2. ticketd   durable bookings: batching front end -> route actors -> Redis AOF fsync always
     cluster   the same on a local Valkey Cluster (3 primaries, 3 replicas), each booking
               confirmed in a replica's AOF too (TICKETD_REDIS_REPLICAS=1)
  3. lua       "classic Python seckill" baseline: Starlette + one Redis Lua script per request
  4. unbatched ticketd with TICKETD_BATCHING=0 (one data-plane request per HTTP request)
  5. overload  ticketd with a tiny TICKETD_MAX_QUEUE and 4x the connections: admission
               control answers 503 overloaded with Retry-After at once
  6. sellout   8 trains of 100 seats, every request for the whole route: sold out in the
               first second, measured from the opening (answers/s counts 201 and 409),
               then audited (exactly the seats on sale sold); bare on the same requests
  7. hotroute  one route of 5,000 seats, --hotroute-connections, one-segment trips,
               nothing sells out (so at most 8 s measured by default): ticketd, bare
               and lua on the same load
  8. waitingroom  a sale's queue: joins (each a new user into the pre-queue) and polls
               (pre-queue users with their signed tickets), ticketd and bare on the same
               requests

Every booking request is new (unique Idempotency-Key and passenger id). Outside the
sellout, routes are sized so nothing sells out (checked before the run, and after it:
every answer must be 201). Each server runs as its own process on loopback: bare
Starlette and the Lua baseline under uvicorn (uvloop + httptools) with
--server-workers processes (default: one per core, the node's ceiling), ticketd as
`make run` starts it with its own default front-end workers; the report says how
many served each run. Each gets a --warmup run first (not ticketd in the sellout),
and is stopped at the end. The table goes to stdout and into docs/benchmarks.md
(section between the throughput markers).

    .venv/bin/python bench/throughput.py --duration 15 --connections 64
    .venv/bin/python bench/throughput.py --profile reports/profile   # also py-spy ticketd

Needs wrk (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`)
and, for --profile, py-spy (`.venv/bin/uv pip install --python .venv/bin/python
py-spy==0.4.3`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import hotroute, sellout, waitingroom
from harness.paths import DOCS, ROOT
from harness.report import HOP, ORDER, WAITING, fs_type, render, write_docs
from harness.scenarios import Bench


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
    parser.add_argument(
        "--server-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="uvicorn workers of bare and the Lua baseline (default: cores)",
    )
    parser.add_argument("--hotroute-connections", type=int, default=256)
    parser.add_argument(
        "--hotroute-rate",
        type=float,
        default=10_000.0,
        help="201/s the hot route is sized for (checked before the run)",
    )
    parser.add_argument(
        "--hotroute-duration",
        type=float,
        default=None,
        help="measured seconds on the hot route (default: --duration, at most 8)",
    )
    parser.add_argument("--hotroute-p99-limit", type=float, default=100.0,
                        help="ms, for the hot route's target line")  # fmt: skip
    parser.add_argument("--overload-queue", type=int, default=8, help="TICKETD_MAX_QUEUE there")
    parser.add_argument("--hop-seconds", type=float, default=5, help="per transport, hop scenario")
    parser.add_argument("--p99-limit", type=float, default=50.0, help="ms, for the target line")
    parser.add_argument("--ready-timeout", type=float, default=120.0)
    parser.add_argument("--data-root", default=None, help="where servers keep data (a disk)")
    parser.add_argument("--profile", default=None, metavar="DIR",
                        help="py-spy ticketd's front end and one route actor into DIR")  # fmt: skip
    parser.add_argument("--profile-seconds", type=float, default=15)
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--docs", default=str(DOCS), help="markdown file to update")
    parser.add_argument("--no-docs", action="store_true", help="do not touch the docs file")
    parser.add_argument("--note", default="", help="a remark to print with the results")
    parser.add_argument(
        "--src", default=str(ROOT), help="ticketd checkout to run (default: this one)"
    )
    parser.add_argument(
        "--ticketd-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a TICKETD_ setting for every ticketd run (A/B of a knob)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data/log directory")
    args = parser.parse_args()

    scen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scen) - {*ORDER, HOP}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {[*ORDER, HOP]}")
    if not 2 <= args.stations <= 64 or not 1 <= args.routes <= 64:
        parser.error("--stations must be 2..64 and --routes 1..64")
    if args.server_workers < 1:
        parser.error("--server-workers must be at least 1")
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
        if hotroute.KEYS[1] in scen:
            hotroute.check_capacity(args)
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
        if "cluster" in scen:
            bench.scenario("cluster", "ticketd on a Redis Cluster, 1 replica per ack",
                           bench.cluster)  # fmt: skip
        if "lua" in scen:
            bench.scenario("lua", "Starlette + Redis Lua (baseline)", bench.lua)
        if "unbatched" in scen:
            bench.scenario("unbatched", "ticketd, TICKETD_BATCHING=0",
                           lambda r: bench.ticketd_run(r, batching=False))  # fmt: skip
        if "overload" in scen:
            bench.scenario("overload", "ticketd overload (admission control)", bench.overload)
        if sellout.KEYS[1] in scen:
            sellout.run(bench)
        if hotroute.KEYS[1] in scen:
            hotroute.run(bench)
        if WAITING in scen:
            waitingroom.run(bench)
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

"""The throughput report: the machine and source it ran on, its tables and targets, and
the docs section it goes to."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

from harness import hotroute, sellout, waitingroom
from harness.paths import ROOT
from harness.scenarios import Bench
from harness.tables import DURABLE, cpu_table, rate_table, sellout_table
from harness.targets import targets

BEGIN = "<!-- bench/throughput.py: begin (generated; rerun the command to replace) -->"


END = "<!-- bench/throughput.py: end -->"


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


#: the waiting-room scenario's name (its rows: waitingroom.KEYS)
WAITING = "waitingroom"


#: the wrk scenarios, in the order they run (the sellout and hot-route ones have their
#: own bare rows, and hotroute its own Lua row)
ORDER = [*DURABLE, sellout.KEYS[1], hotroute.KEYS[1], WAITING]


#: not a wrk scenario: bench/hop.py, one round trip to an actor, Ray call vs data plane
HOP = "hop"


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
        f"segments (5,000 seats each: nothing sells out) and {args.users} users (sellout and "
        "hot route: see their tables)",
        f"- servers: bare Starlette and the Lua baseline with {args.server_workers} uvicorn "
        f"worker(s) each (`--server-workers`; the machine has {os.cpu_count()} cores); ticketd "
        "with its own default front-end workers (the *workers* column)",
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
        f"Durable bookings ({args.connections} connections, {args.routes} routes):",
        "",
        *rate_table(res, DURABLE),
        "",
        "201/s counts acknowledged bookings only; p50/p99 are wrk's latency over all answers. "
        "Scenarios: *bare* — Starlette endpoint that reads the body and answers 201 "
        "(the ceiling); *ticketd* — `python -m server`, batching on; *Starlette + Redis Lua* "
        "— `bench/apps/lua_seckill.py`, one Lua script per request, no actors (comparison "
        "only); *unbatched* — ticketd with `TICKETD_BATCHING=0`; *overload* — ticketd with "
        f"`TICKETD_MAX_QUEUE={args.overload_queue}` at {args.connections * 4} connections "
        "(503 `overloaded` with Retry-After is the expected answer there). *workers*: the "
        "processes that served HTTP — bare and the Lua baseline run under uvicorn with "
        f"`--server-workers {args.server_workers}` (one per core: the node's ceiling; the Lua "
        "baseline's workers share one Redis); ticketd runs as `make run` starts it, with "
        "its own default (TICKETD_WORKERS unset), counted as its `-m server worker` "
        "processes, or *1 (main process)* when it has none.",
    ]
    if any(k in res for k in sellout.KEYS):
        lines += [
            "",
            f"Sellout ({sellout.ROUTES} trains of {sellout.on_sale() // sellout.ROUTES} seats "
            f"and {sellout.STATIONS} stations, {args.connections} connections): every request a "
            "new one-passenger booking for the whole route, measured for "
            f"{args.duration:g} s from the opening (no booking warm-up: the route actors are "
            "activated with availability reads only; bare gets its warm-up):",
            "",
            *sellout_table(res),
            "",
            "*answers/s* counts 201 and 409 (sold out); any other answer fails the run. "
            "*seats sold*: the audit after the run, from the admin list "
            "`GET /v1/routes/{route_id}/bookings` of every train: seats of bookings not "
            "cancelled or expired, none twice, every train full, as many bookings as 201s.",
        ]
    if any(k in res for k in hotroute.KEYS):
        lines += [
            "",
            f"Hot route (1 route of 5,000 seats and {hotroute.STATIONS} stations, "
            f"{args.hotroute_connections} connections, one-segment trips, nothing sells out: "
            f"every request goes to one route actor; {args.warmup:g} s warm-up then "
            f"{hotroute.duration(args):g} s measured per server, which the route has seats "
            f"for at up to {args.hotroute_rate:,.0f}/s):",
            "",
            *rate_table(res, hotroute.KEYS),
        ]
    if any(k in res for k in waitingroom.KEYS):
        lines += [
            "",
            f"Waiting room ({args.connections} connections; a sale on one route opening in an "
            "hour): every join a new user into the pre-queue (measured from the first "
            f"request, after {waitingroom.WARM_JOINS} joins of others), then "
            f"{waitingroom.POLLERS:,} of those users polling with the ticket their join gave, "
            f"in a cycle ({args.warmup:g} s warm-up); bare Starlette answers the same "
            "requests with a constant queue answer:",
            "",
            *rate_table(res, waitingroom.JOIN_KEYS, status=200),
            *rate_table(res, waitingroom.POLL_KEYS, status=200)[2:],
        ]
    lines += [
        "",
        "CPU while measuring (from /proc, all processes of each server: the front end — the "
        "main process and its `-m server worker` or uvicorn worker processes — its route "
        "actors, its Redis, the rest of its local Ray; wrk separately). *cores busy* "
        "includes wrk; *CPU µs per 201* is the server's CPU (without wrk) per acknowledged "
        "booking (sellout rows: per answer), which bounds the rate on a quiet machine at "
        "about cores / (CPU per booking):",
        "",
        *cpu_table(res),
        "",
        "Targets:",
        *targets(res, args),
    ]
    return "\n".join(lines) + "\n"

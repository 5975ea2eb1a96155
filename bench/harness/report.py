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

from harness.cpu import CPU_PARTS
from harness.paths import ROOT
from harness.scenarios import Bench
from harness.workload import Result

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

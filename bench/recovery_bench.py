"""Route actor recovery and batch throughput, against a real embedded Redis and local Ray.

1. recover() time of a route with 20,000 journalled events: without a snapshot (all
   replayed), with snapshots every 2,000 events as the actor writes them (snapshot +
   tail), and unbatched (one event per journal entry: the paging worst case).
   Target: <= 1 s.
2. Time from SIGKILL of the actor process to the actor answering again, with that
   route's snapshot + tail to recover. Target: <= 3 s.
3. Batch throughput of one actor: calls of 100 bookings each, appendfsync always.

The journals hold realistic events: the real domain decides random bookings, confirms
and cancels on a 1,000-seat, 16-station train, in batches of 100 as the actor would.

    .venv/bin/python bench/recovery_bench.py [--events 20000] [--kills 5] [--batches 60]
"""

from __future__ import annotations

import os

# as in tests/conftest.py: Ray reads this when its core library loads
os.environ.setdefault("RAY_AUTH_MODE", "token")

import argparse
import asyncio
import datetime as dt
import json
import random
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import ray
import redis
import redis.asyncio as aredis
from harness import report
from harness.plane import PlaneCaller
from ray.exceptions import RayActorError

from actors import directory
from actors.actor import Reply
from actors.config import ActorConfig
from actors.domain.decide import Policy, run_batch
from actors.domain.messages import Book, Cancel, Command, Confirm, Event, Passenger, Sweep, encode
from actors.domain.route import RouteDef
from actors.domain.state import RouteState, apply, to_snapshot
from actors.plane import protocol
from actors.storage import journal, keys
from actors.storage.recovery import recover
from actors.storage.redis_server import EmbeddedRedis

STATIONS = [f"S{k:02d}" for k in range(16)]
SNAPSHOT_EVERY = ActorConfig("redis://unused").snapshot_every
#: the data-plane secret of the actors this benchmark creates
PLANE_SECRET = "recovery-bench-plane-secret-0123456789ab"


def config(url: str) -> ActorConfig:
    return ActorConfig(url, plane_secret=PLANE_SECRET)


_reply = msgspec.msgpack.Decoder(Reply)


def train(name: str, coaches: int = 10) -> RouteDef:
    """16 stations; `coaches` second-class coaches of 20 rows x ABCDF (1,000 seats by default)."""
    spec = [
        {"number": f"{n + 1:02d}", "class": "second", "rows": 20, "letters": "ABCDF"}
        for n in range(coaches)
    ]
    return RouteDef.from_dict(
        {"train": name, "date": "2026-12-01", "stations": STATIONS, "coaches": spec}
    )


def booking(rng: random.Random, tag: str) -> Book:
    i = rng.randrange(15)
    j = rng.randrange(i + 1, min(16, i + 6))  # mostly short and medium trips
    people = [Passenger(f"n{tag}-{m}", f"id{tag}-{m}") for m in range(rng.choice((1, 1, 1, 2)))]
    return Book(f"b{tag}", f"u{tag}", f"k{tag}", "fp", STATIONS[i], STATIONS[j], "second", people)


def generate(route: RouteDef, target: int, seed: int) -> list[list[Event]]:
    """Batches of events from the real domain: ~60 books, 20 confirms, 20 cancels each."""
    rng = random.Random(seed)
    state = RouteState.empty(route)
    policy = Policy(hold_seconds=600.0, user_cap=5)
    held: list[tuple[str, str]] = []
    batches: list[list[Event]] = []
    total, now, n = 0, 1_800_000_000.0, 0
    while total < target:
        commands: list[Command] = [Sweep()]
        for _ in range(60):
            commands.append(booking(rng, str(n)))
            n += 1
        rng.shuffle(held)
        for bid, user in held[:20]:
            commands.append(Confirm(bid, user))
        for bid, user in held[20:40]:
            commands.append(Cancel(bid, user))
        del held[:40]
        events, _ = run_batch(state, commands, policy, now)
        now += 1.0
        held.extend((e.booking_id, e.user) for e in events if type(e).__name__ == "Held")
        if total + len(events) > target:
            events = events[: target - total]
        batches.append(events)
        total += len(events)
    return batches


async def write_journal(
    url: str, route: RouteDef, batches: list[list[Event]], snapshot_every: int | None
) -> None:
    """Store a route and append its batches through the fenced Journal, as an actor would."""
    client = aredis.Redis.from_url(url)
    sync = redis.Redis.from_url(url)
    try:
        await client.hset(keys.ROUTES, route.route_id, json.dumps(route.to_dict()))
        writer = journal.Journal(client, route.route_id, journal.activate(sync, route.route_id))
        state = RouteState.empty(route) if snapshot_every else None
        since, last_id = 0, "0-0"
        for events in batches:
            last_id = await writer.append(encode(events))
            if state is not None and snapshot_every:
                for event in events:
                    apply(state, event)
                since += len(events)
                if since >= snapshot_every:
                    await writer.write_snapshot(to_snapshot(state), last_id)
                    since = 0
    finally:
        await client.aclose()
        sync.close()


def time_recover(url: str, route_id: str, repeats: int = 5) -> tuple[float, float, int, int]:
    """Median wall and CPU seconds of recover(), the events it replayed, the entries read.

    CPU time is this process's alone (Redis works in another): on a shared, loaded
    machine it shows what recovery costs when the core is not taken by others.
    """
    client = redis.Redis.from_url(url)
    try:
        stored = journal.load(client, route_id)
        tail = sum(len(events) for _, events in stored.events())
        wall, cpu = [], []
        for _ in range(repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            state, _ = recover(client, route_id)
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
    finally:
        client.close()
    assert state.events_applied > 0
    return statistics.median(wall), statistics.median(cpu), tail, len(stored.entries)


def process_started(pid: int) -> float:
    """When a process started, in epoch seconds (Linux /proc, 10 ms resolution)."""
    with open("/proc/stat") as f:
        boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    with open(f"/proc/{pid}/stat") as f:
        ticks = int(f.read().rpartition(")")[2].split()[19])
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def kill_to_serving(
    handle: Any, kills: int, route: bool = True
) -> list[tuple[float, float, float]]:
    """Per kill: seconds from SIGKILL to an answered request (over the data plane for a
    route, a Ray call for the baseline), from SIGKILL to the start of the replacement
    process, and the new actor's own recover() seconds."""
    out = []
    caller = PlaneCaller(PLANE_SECRET, handle) if route else None

    def ask() -> None:
        if caller is None:
            ray.get(handle.submit.remote(encode([])), timeout=60)
        else:
            caller.submit(encode([]))

    ask()
    for _ in range(kills):
        pid = ray.get(handle.info.remote())["pid"]
        killed_at = time.time()
        started = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        while True:
            try:
                ask()
                break
            except (RayActorError, protocol.PlaneError, OSError):
                continue  # the old process's socket, or Ray's retries ran out: ask again
        elapsed = time.perf_counter() - started
        info = ray.get(handle.info.remote())
        assert info["pid"] != pid
        spawn = process_started(info["pid"]) - killed_at
        out.append((elapsed, spawn, info["recovery_seconds"]))
        time.sleep(0.5)
    if caller is not None:
        caller.close()
    return out


def throughput(handle: Any, batches: int, size: int, in_flight: int) -> dict[str, float]:
    """Bookings/s of calls of `size` bookings, `in_flight` calls outstanding at a time."""
    rng = random.Random(7)
    calls = [
        encode([booking(rng, f"t{in_flight}-{b}-{k}") for k in range(size)]) for b in range(batches)
    ]
    caller = PlaneCaller(PLANE_SECRET, handle)
    try:
        caller.submit(encode([]))  # warm
        started = time.perf_counter()
        answers = caller.pipeline(calls, in_flight)
        elapsed = time.perf_counter() - started
    finally:
        caller.close()
    latencies = [lat for lat, _ in answers]
    ok = sum(r.ok for _, raw in answers for r in _reply.decode(raw).results)
    latencies.sort()
    return {
        "bookings_per_s": ok / elapsed,
        "commands_per_s": batches * size / elapsed,
        "ok": ok,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    where = Path(tempfile.gettempdir())
    return f"{report.machine()}, Redis data on {report.fs_type(where)}, load average {load}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--parts", default="1,2,3", help="which measurements to run, e.g. 1 or 2,3")
    args = ap.parse_args()

    print(f"date {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    print(machine())
    with tempfile.TemporaryDirectory(prefix="recovery-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp))
        url = server.start()
        try:
            run(url, args)
        finally:
            server.stop()
    print(f"after: load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


def run(url: str, args: argparse.Namespace) -> None:
    parts = {int(p) for p in args.parts.split(",")}
    snap_route = train("RB1")
    if parts & {1, 2}:
        batches = generate(snap_route, args.events, args.seed)
        asyncio.run(write_journal(url, snap_route, batches, SNAPSHOT_EVERY))
    if 1 in parts:
        recovery(url, snap_route, batches)
    if not parts & {2, 3}:
        return
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        if 2 in parts:
            restart(url, snap_route, args.kills)
        if 3 in parts:
            batch_throughput(url, args.batches, args.batch_size)
    finally:
        ray.shutdown()


def recovery(url: str, snap_route: RouteDef, batches: list[list[Event]]) -> None:
    total = sum(len(b) for b in batches)
    kinds: dict[str, int] = {}
    for b in batches:
        for e in b:
            kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
    print(f"\n1. recovery of {total} events in {len(batches)} batches ({kinds})")
    full_route, flat_route = train("RB2"), train("RB3")
    asyncio.run(write_journal(url, full_route, batches, None))
    singles = [[e] for b in batches for e in b]
    asyncio.run(write_journal(url, flat_route, singles, None))
    for label, route in [
        ("no snapshot, full replay", full_route),
        (f"snapshot every {SNAPSHOT_EVERY} + tail", snap_route),
        ("no snapshot, 1 event per entry", flat_route),
    ]:
        wall, cpu, tail, entries = time_recover(url, route.route_id)
        print(
            f"   {label:32s} recover() {wall * 1000:6.0f} ms wall, {cpu * 1000:4.0f} ms CPU "
            f"(replayed {tail} events from {entries} entries)"
        )


class Baseline:
    """An actor that does nothing: how long Ray itself takes to restart one."""

    async def submit(self, payload: bytes) -> bytes:
        return payload

    async def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "recovery_seconds": 0.0}


def restart(url: str, route: RouteDef, kills: int) -> None:
    # the same options as the directory's route actors, nothing to recover
    baseline = (
        ray.remote(Baseline)
        .options(
            name="recovery-bench-baseline",
            lifetime="detached",
            max_restarts=-1,
            max_task_retries=3,
            num_cpus=0,
        )
        .remote()
    )
    handle = directory.get_or_create(route.route_id, config(url))
    empty: list[tuple[float, float, float]] = []
    timings: list[tuple[float, float, float]] = []
    try:
        for _ in range(kills):  # alternated, so both see the same background load
            empty += kill_to_serving(baseline, 1, route=False)
            timings += kill_to_serving(handle, 1)
    finally:
        ray.kill(baseline, no_restart=True)
        ray.kill(handle, no_restart=True)
    print(f"\n2. SIGKILL to serving again ({kills} kills each)")
    base = [t for t, _, _ in empty]
    print(
        f"   Ray alone (an empty actor, same options): median {statistics.median(base):.2f} s, "
        f"worst {max(base):.2f} s"
    )
    print(f"   route {route.route_id}:")
    for n, (elapsed, spawn, recovered) in enumerate(timings, 1):
        print(
            f"   kill {n}: serving after {elapsed:5.2f} s; new process started at "
            f"{spawn:+.2f} s, its recover() took {recovered * 1000:.0f} ms"
        )
    worst = max(t for t, _, _ in timings)
    median = statistics.median(t for t, _, _ in timings)
    print(f"   median {median:.2f} s, worst {worst:.2f} s")


def batch_throughput(url: str, batches: int, size: int) -> None:
    print(f"\n3. throughput, {size} bookings per call, appendfsync always")
    for in_flight in (1, 4):
        big = train(f"RT{in_flight}", coaches=40)  # 4,000 seats: the run never sells out
        asyncio.run(write_journal(url, big, [], None))
        handle = directory.get_or_create(big.route_id, config(url))
        try:
            r = throughput(handle, batches, size, in_flight)
        finally:
            ray.kill(handle, no_restart=True)
        print(
            f"   {in_flight} call(s) in flight: {r['bookings_per_s']:8.0f} bookings/s "
            f"({r['ok']:.0f} ok of {batches * size}; {r['commands_per_s']:.0f} commands/s), "
            f"call p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()

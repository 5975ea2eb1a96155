"""One hop to a route actor: a Ray actor call against ticketd's direct data plane.

An asyncio driver keeps one request in flight to each of --actors actors for
--seconds per transport, with the same small payload, and reads the CPU both
processes used (the driver from getrusage, the actors from /proc):

  ray      `await handle.echo.remote(payload)`: an async Ray actor method
  plane    one authenticated data-plane Link per actor (server/dispatch/link.py ->
           actors/plane/listener.py), over the same-node Unix socket
  plane-tcp  the same over TCP on the node's address

The actors answer at once (no Redis, no seat model): this isolates the
transport. Prints one JSON line (`HOPJSON {...}`) and a table.

    .venv/bin/python bench/hop.py --seconds 5 --actors 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_AUTH_MODE", "token")

import ray  # noqa: E402

from actors.domain.messages import Command, GetBooking, encode  # noqa: E402
from actors.plane import protocol  # noqa: E402
from actors.plane.listener import Connection, PlaneServer  # noqa: E402
from server.dispatch.link import Link  # noqa: E402

SECRET = "hop-benchmark-secret-0123456789abcdef-01"
_CLK = os.sysconf("SC_CLK_TCK")


class Echo:
    """Answers every request at once, over Ray and over the data plane."""

    def __init__(self) -> None:
        self._plane: PlaneServer | None = None

    async def echo(self, payload: bytes) -> bytes:
        return payload

    async def address(self) -> dict[str, Any]:
        if self._plane is None:
            bind = str(ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
            self._plane = await PlaneServer.start(self, SECRET, bind, "hop")
        a = self._plane.address
        return {"host": a.host, "port": a.port, "unix": a.unix, "pid": os.getpid()}

    def plane_submit(self, commands: list[Command], conn: Connection, req_id: int) -> None:
        conn.reply(req_id, [], 0, {})

    def plane_availability(self, conn: Connection, req_id: int) -> None:
        conn.reply(req_id, [], 0, {})


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLK


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _measure(
    name: str, one: Any, calls: list[Any], pids: list[int], seconds: float
) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    counts = [0] * len(calls)

    async def loop(k: int) -> None:
        call = calls[k]
        while time.monotonic() < stop:
            await one(call)
            counts[k] += 1

    for call in calls:  # warm every path up before the clock starts
        await one(call)
    c0, a0, t0 = _own_cpu(), sum(_cpu(p) for p in pids), time.monotonic()
    await asyncio.gather(*(loop(k) for k in range(len(calls))))
    c1, a1, t1 = _own_cpu(), sum(_cpu(p) for p in pids), time.monotonic()
    n = sum(counts)
    return {
        "transport": name,
        "round_trips": n,
        "per_second": n / (t1 - t0),
        "caller_us": 1e6 * (c1 - c0) / n,
        "actor_us": 1e6 * (a1 - a0) / n,
        "total_us": 1e6 * ((c1 - c0) + (a1 - a0)) / n,
    }


async def run(actors: int, seconds: float) -> list[dict[str, Any]]:
    remote = ray.remote(num_cpus=0)(Echo)
    handles = [remote.remote() for _ in range(actors)]
    where = await asyncio.gather(*(h.address.remote() for h in handles))
    pids = [int(w["pid"]) for w in where]
    payload = encode([GetBooking("G101-20261201-" + "0" * 24, "user-0001")])
    out = []

    async def ray_call(h: Any) -> None:
        await h.echo.remote(payload)

    out.append(await _measure("ray", ray_call, handles, pids, seconds))
    for name, unix in (("plane", True), ("plane-tcp", False)):
        links = [await Link.connect(w, SECRET, unix=unix) for w in where]

        async def plane_call(link: Link) -> None:
            await link.request(protocol.OP_SUBMIT, payload)

        out.append(await _measure(name, plane_call, links, pids, seconds))
        for link in links:
            link.close()
    for h in handles:
        ray.kill(h)
    return out


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown rows of a hop run."""
    lines = [
        "| transport | round trips/s | caller CPU µs | actor CPU µs | CPU µs per round trip |",
        "|---|--:|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['transport']} | {r['per_second']:,.0f} | {r['caller_us']:.0f} | "
            f"{r['actor_us']:.0f} | {r['total_us']:.0f} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--actors", type=int, default=8)
    args = parser.parse_args()
    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        rows = asyncio.run(run(args.actors, args.seconds))
    finally:
        ray.shutdown()
    print("\n".join(table(rows)))
    print("HOPJSON " + json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

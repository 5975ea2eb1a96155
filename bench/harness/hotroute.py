"""The hot-route scenario: one route of 5,000 seats, many connections, one-segment trips,
nothing sold out. Every request goes to the same route actor: where batching must pay.

ticketd, bare Starlette and the Redis-Lua baseline each get the same load for the
same time. One route holds 31 x 5,000 one-segment bookings, so the time is short:
a server booking 10,000/s sells it out in about 15 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.workload import (
    HEADROOM,
    SEATS_PER_ROUTE,
    USER_CAP,
    Result,
    lua_config,
    route_defs,
)

if TYPE_CHECKING:
    import argparse

    from harness.scenarios import Bench

STATIONS = 32


#: the longest default measurement: what --hotroute-rate leaves room for on one route
LONGEST = 8.0


#: rows in table order: bare, ticketd, Lua
KEYS = ("hotroute-bare", "hotroute", "hotroute-lua")


def defs() -> list[dict[str, Any]]:
    return route_defs(1, STATIONS, train="HOT")


def duration(args: argparse.Namespace) -> float:
    """Measured seconds per server: --hotroute-duration, else --duration up to LONGEST."""
    if args.hotroute_duration is not None:
        return float(args.hotroute_duration)
    return min(float(args.duration), LONGEST)


def check_capacity(args: argparse.Namespace) -> None:
    """Fail before any server starts if the route could sell out at --hotroute-rate."""
    seconds = args.warmup + duration(args)
    expected = args.hotroute_rate * HEADROOM * seconds
    segments = STATIONS - 1
    print(
        f"hot route: 1 route x {segments} segments x {SEATS_PER_ROUTE} seats = "
        f"{segments * SEATS_PER_ROUTE:,} one-segment bookings per server; plan for <= "
        f"{expected:,.0f} ({args.hotroute_rate:,.0f}/s x {HEADROOM} x {seconds:g} s)"
    )
    if expected / segments > SEATS_PER_ROUTE:
        raise SystemExit(
            f"the hot route could sell out ({expected / segments:,.0f} bookings per segment > "
            f"{SEATS_PER_ROUTE}): lower --hotroute-duration or --warmup, or --hotroute-rate "
            "if no server books that fast"
        )
    if expected / args.users > USER_CAP:
        raise SystemExit(f"users would hit the cap of {USER_CAP} on the hot route: raise --users")


def run(bench: Bench) -> None:
    """The same hot-route load on bare Starlette, ticketd and the Lua baseline."""
    route = defs()
    cfg = lua_config(bench.dir / "wrk_hotroute.lua", route, bench.tokens)
    conns, secs = bench.args.hotroute_connections, duration(bench.args)

    def bare(res: Result) -> None:
        bench.bare(res, cfg, conns, secs)

    def ticketd(res: Result) -> None:
        bench.ticketd_run(res, True, route, cfg, conns, secs)
        name_a_sellout(res)

    def lua(res: Result) -> None:
        bench.lua(res, route, cfg, conns, secs)
        name_a_sellout(res)

    bench.scenario(KEYS[0], "hot route: bare Starlette (ceiling)", bare)
    bench.scenario(KEYS[1], "hot route: ticketd, durable, batched", ticketd)
    bench.scenario(KEYS[2], "hot route: Starlette + Redis Lua", lua)


def name_a_sellout(res: Result) -> None:
    """409s on the hot route mean it sold out: say so, and what to change."""
    if res.run is not None and res.run.statuses.get(409):
        res.error = (
            f"{res.run.statuses[409]} x 409: the route sold out (a server faster than "
            "--hotroute-rate); lower --hotroute-duration"
        )

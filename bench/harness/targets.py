"""The throughput targets, each line marked met or MISSED."""

from __future__ import annotations

import argparse

from harness import hotroute, sellout, waitingroom
from harness.workload import Result

SELLOUT_VS_BARE = 0.6  # ticketd's sellout answers/s over bare's on the same requests


DURABLE_VS_LUA = 1.5  # durable ticketd's 201/s over the Lua baseline's


DURABLE_CPU_US = 300.0  # server CPU (all ticketd's processes) per acknowledged booking


HOTROUTE_VS_LUA = 2.0  # ticketd's 201/s over the Lua baseline's on the hot route


POLLS_VS_BARE = 0.6  # ticketd's queue polls/s over bare's on the same requests


JOINS_VS_BARE = 0.3  # ticketd's queue joins/s over bare's on the same requests


def targets(results: dict[str, Result], args: argparse.Namespace) -> list[str]:
    """One line per target: value, goal, met or MISSED (or not measured)."""
    out: list[str] = []

    def measured(key: str) -> Result | None:
        res = results.get(key)
        return res if res is not None and res.run is not None else None

    def ratio(key: str, base: str) -> float | None:
        num, den = measured(key), measured(base)
        return num.rate / den.rate if num and den and den.rate else None

    def p99(key: str) -> float | None:
        res = measured(key)
        return res.run.latency_ms["p99"] if res and res.run else None

    def line(name: str, value: float | None, goal: float, fmt: str, higher: bool = True) -> None:
        if value is None:
            out.append(f"- {name}: not measured")
            return
        met = value >= goal if higher else value <= goal
        out.append(f"- {name}: {fmt.format(value)} (target {fmt.format(goal)}): "
                   f"{'met' if met else 'MISSED'}")  # fmt: skip

    bare, td = sellout.KEYS
    line("sellout: ticketd / bare answers/s", ratio(td, bare), SELLOUT_VS_BARE, "{:.2f}x")
    line("sellout: ticketd p99", p99(td), args.p99_limit, "{:.1f} ms", higher=False)
    sold = measured(td)
    if sold is None or sold.sold is None:
        out.append("- sellout: exactly the seats on sale sold: not measured")
    else:
        exact = sold.error is None and sold.ok
        out.append(
            f"- sellout: exactly the seats on sale sold: {sold.sold:,} of {sellout.on_sale():,} "
            f"({sold.run.created if sold.run else 0:,} x 201): {'met' if exact else 'MISSED'}"
            + ("" if exact else f" ({sold.error or 'answers other than 201/409'})")
        )

    line("durable: ticketd / Starlette+Lua 201/s", ratio("ticketd", "lua"), DURABLE_VS_LUA,
         "{:.2f}x")  # fmt: skip
    line("durable: ticketd p99", p99("ticketd"), args.p99_limit, "{:.1f} ms", higher=False)
    td_res = measured("ticketd")
    cpu = td_res.cpu_per_answer_us if td_res else None
    line("durable: ticketd server CPU per 201", cpu, DURABLE_CPU_US, "{:,.0f} µs", higher=False)

    _, hot_td, hot_lua = hotroute.KEYS
    line("hot route: ticketd / Starlette+Lua 201/s", ratio(hot_td, hot_lua), HOTROUTE_VS_LUA,
         "{:.2f}x")  # fmt: skip
    line("hot route: ticketd p99", p99(hot_td), args.hotroute_p99_limit, "{:.1f} ms",
         higher=False)  # fmt: skip
    queue = ((waitingroom.POLL_KEYS, POLLS_VS_BARE, "polls"),
             (waitingroom.JOIN_KEYS, JOINS_VS_BARE, "joins"))  # fmt: skip
    for (bare_key, key), goal, what in queue:
        line(f"waiting room: {what} ticketd / bare", ratio(key, bare_key), goal, "{:.2f}x")
        line(f"waiting room: {what} ticketd p99", p99(key), args.p99_limit, "{:.1f} ms",
             higher=False)  # fmt: skip
    return out

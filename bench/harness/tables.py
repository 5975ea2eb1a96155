"""The throughput report's tables: one per load (durable bookings, sellout, hot route),
and where the CPU went."""

from __future__ import annotations

from harness import hotroute, sellout, waitingroom
from harness.cpu import CPU_PARTS
from harness.workload import Result

#: the durable-booking rows (also the names of their scenarios), in table order
DURABLE = ["bare", "ticketd", "cluster", "lua", "unbatched", "overload"]


def _others(res: Result) -> str:
    """Answers the rate does not count, with their statuses."""
    assert res.run is not None
    others = {c: n for c, n in sorted(res.run.statuses.items()) if c not in res.counted}
    return f"{sum(others.values()):,}" + (f" {others}" if others else "")


def _notes(res: Result) -> str:
    return "; ".join(res.notes + ([f"FAILED: {res.error}"] if res.error else []))


def _ratio(res: Result, ceiling: Result | None) -> str:
    return f"{res.rate / ceiling.rate:.2f}" if ceiling and ceiling.rate else "–"


def rate_table(results: dict[str, Result], keys: list[str] | tuple[str, ...], status: int = 201
               ) -> list[str]:  # fmt: skip
    """`status`/s and latency of keys' rows; the first row is the ceiling ("vs bare")."""
    ceiling = results.get(keys[0])
    rows = [
        f"| scenario | workers | {status}/s | p50 ms | p99 ms | vs bare | non-{status} | "
        "socket errors | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for key in keys:
        res = results.get(key)
        if res is None:
            continue
        if res.run is None:
            rows.append(f"| {res.label} | – | – | – | – | – | – | – | FAILED: {res.error} |")
            continue
        r = res.run
        rows.append(
            f"| {res.label} | {res.workers} | {res.rate:,.0f} | {r.latency_ms['p50']:.2f} | "
            f"{r.latency_ms['p99']:.2f} | {_ratio(res, ceiling)} | {_others(res)} | "
            f"{r.socket_errors} | {_notes(res)} |"
        )
    return rows


def sellout_table(results: dict[str, Result]) -> list[str]:
    """Answers/s (201 and 409), bookings, the audit's seats sold and latency."""
    ceiling = results.get(sellout.KEYS[0])
    rows = [
        "| scenario | workers | answers/s | 201 | seats sold | p50 ms | p99 ms | vs bare "
        "| other answers | socket errors | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for key in sellout.KEYS:
        res = results.get(key)
        if res is None:
            continue
        if res.run is None:
            rows.append(f"| {res.label} | – | – | – | – | – | – | – | – | – | "
                        f"FAILED: {res.error} |")  # fmt: skip
            continue
        r = res.run
        sold = "–" if res.sold is None else f"{res.sold:,} of {sellout.on_sale():,}"
        rows.append(
            f"| {res.label} | {res.workers} | {res.rate:,.0f} | {r.created:,} | {sold} | "
            f"{r.latency_ms['p50']:.2f} | {r.latency_ms['p99']:.2f} | {_ratio(res, ceiling)} | "
            f"{_others(res)} | {r.socket_errors} | {_notes(res)} |"
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
    for key in [*DURABLE, *sellout.KEYS, *hotroute.KEYS, *waitingroom.KEYS]:
        res = results.get(key)
        per = res.cpu_per_answer_us if res is not None else None
        if res is None or res.run is None or per is None:
            continue
        n, secs = res.answers, res.run.seconds
        total = sum(v for k, v in res.cpu.items() if k != "wrk")
        parts = [f"{1e6 * res.cpu.get(p, 0.0) / n:,.0f}" for p in CPU_PARTS]
        label = res.label + (", per answer" if res.counted != (201,) else "")
        rows.append(
            f"| {label} | {(total + res.cpu.get('wrk', 0.0)) / secs:.2f} | {per:,.0f} | "
            + " | ".join(parts)
            + " |"
        )
    return rows

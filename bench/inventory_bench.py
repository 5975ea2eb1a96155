"""Seat-inventory core benchmark: booking decisions/s and exact-availability query time.

A 16-station, 1,000-seat train in three classes; random trips (random groups of
1 with some 2-5) booked from empty until sold out, on one core.

    .venv/bin/python bench/inventory_bench.py [--seed 1] [--attempts 300000]
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from actors.domain.decide import Policy, execute
from actors.domain.errors import DomainError
from actors.domain.inventory import Inventory
from actors.domain.messages import Book, Passenger
from actors.domain.route import RouteDef, trip_mask
from actors.domain.state import RouteState

STATIONS = [f"S{k:02d}" for k in range(16)]


def train() -> RouteDef:
    """16 stations, 1,000 seats: 2 business coaches (72), 3 first (228), 7 second (700)."""
    spec = [("business", 2, 12, "ACF"), ("first", 3, 19, "ACDF"), ("second", 7, 20, "ABCDF")]
    coaches = []
    for klass, count, rows, letters in spec:
        for _ in range(count):
            number = f"{len(coaches) + 1:02d}"
            coaches.append({"number": number, "class": klass, "rows": rows, "letters": letters})
    return RouteDef.from_dict(
        {"train": "G1", "date": "2026-12-01", "stations": STATIONS, "coaches": coaches}
    )  # fmt: skip


def commands(n: int, seed: int) -> list[Book]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        i = rng.randrange(15)
        j = rng.randrange(i + 1, 16)
        size = 1 if rng.random() < 0.8 else rng.randint(2, 5)
        klass = rng.choices(["second", "first", "business"], [8, 3, 1])[0]
        pax = [Passenger(f"p{k}-{m}", f"id{k}-{m}") for m in range(size)]
        out.append(
            Book(f"b{k}", f"u{k}", f"k{k}", "f", STATIONS[i], STATIONS[j], klass, pax,
                 together=size > 1 and rng.random() < 0.5)
        )  # fmt: skip
    return out


def availability_us(inv: Inventory, queries: list[tuple[str, int, int]]) -> float:
    """Mean time of one exact-availability query with the memo defeated."""
    t = time.perf_counter()
    for klass, i, j in queries:
        inv.count_free(klass, trip_mask(i, j))  # the computation behind the memo
    return (time.perf_counter() - t) / len(queries) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--attempts", type=int, default=300_000)
    args = ap.parse_args()
    route = train()
    assert len(route.seats()) == 1000, len(route.seats())
    cmds = commands(args.attempts, args.seed)
    state = RouteState.empty(route)
    policy = Policy(hold_seconds=600, user_cap=5)
    ok = refused = done = max_masks = 0
    early = (0.0, 0)
    worst_avail_us = 0.0
    rng = random.Random(args.seed + 1)
    queries = [(rng.choice(route.classes()), *sorted(rng.sample(range(16), 2))) for _ in range(500)]
    inv = state.inv
    elapsed = 0.0
    # run in chunks until every class is sold out on every segment; only the booking
    # loop is timed, not the sold-out check between chunks
    while done < len(cmds):
        chunk = cmds[done : done + 1000]
        t0 = time.perf_counter()
        for cmd in chunk:
            try:
                execute(state, cmd, policy, 0.0)
                ok += 1
            except DomainError:
                refused += 1
        elapsed += time.perf_counter() - t0
        done += len(chunk)
        if done == 10_000:
            # the selling phase: most bookings succeed in the first 10k attempts
            early = (elapsed, ok)
        worst_avail_us = max(worst_avail_us, availability_us(inv, queries))
        max_masks = max(max_masks, sum(len(inv.index[k]) for k in inv.classes))
        if not any(max(inv.matrix(k)) for k in inv.classes):
            break
    cmds = cmds[:done]
    masks = sum(len(inv.index[k]) for k in inv.classes)
    avail_us = availability_us(inv, queries)
    t2 = time.perf_counter()
    for _ in range(200):
        for k in inv.classes:
            inv.version[k] += 1
            inv.matrix(k)
    matrix_us = (time.perf_counter() - t2) / 200 * 1e6
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    print(
        f"attempts until sold out {len(cmds)}: booked {ok}, refused {refused}, "
        f"distinct masks at end {masks}"
    )
    print(
        f"booking decisions/s: {len(cmds) / elapsed:,.0f}  "
        f"({elapsed / len(cmds) * 1e6:.2f} µs each)"
    )
    if early[0]:
        print(
            f"  of which the first 10,000 attempts ({early[1]} booked): "
            f"{10_000 / early[0]:,.0f} decisions/s"
        )
    print(
        f"exact availability (uncached) query: {avail_us:.2f} µs at the end, "
        f"worst mid-sale {worst_avail_us:.2f} µs (max distinct masks {max_masks})"
    )
    print(f"full matrix, all classes (uncached): {matrix_us:.0f} µs")


if __name__ == "__main__":
    main()

"""The sellout scenario: small trains sold out in the first second, every request for
the whole route, measured from the opening, then audited seat by seat.

Every answer counts (201 booked, 409 sold out): once the trains are gone, what is
left to measure is how fast ticketd says no. Bare Starlette answers the very same
requests (201 to all) for the ceiling.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from harness.servers import Server, http
from harness.workload import Result, lua_config, route_defs, route_id, seats

if TYPE_CHECKING:
    from harness.scenarios import Bench

ROUTES = 8


STATIONS = 8


COACHES, ROWS = 4, 5  # x ABCDF: 100 seats a train


#: bare's row and ticketd's, in table order
KEYS = ("sellout-bare", "sellout")


#: statuses a booking in the admin list holds no seat in
RELEASED = ("cancelled", "expired")


def defs() -> list[dict[str, Any]]:
    return route_defs(ROUTES, STATIONS, train="SO", coaches=COACHES, rows=ROWS)


def on_sale() -> int:
    """Seats on sale over all trains: what a sound sellout sells, exactly."""
    return sum(seats(d) for d in defs())


def run(bench: Bench) -> None:
    """Bare on the sellout requests (the ceiling), then ticketd from the opening."""
    routes = defs()
    cfg = lua_config(bench.dir / "wrk_sellout.lua", routes, bench.tokens, whole_route=True)

    def bare(res: Result) -> None:
        res.counted = (201, 409)  # bare answers 201 only; counted alike for the ratio
        bench.bare(res, cfg)

    def ticketd(res: Result) -> None:
        res.counted = res.allowed = (201, 409)
        srv = bench.ticketd(res.key, routes)
        try:
            # no booking warm-up: it would sell the trains (activate has read every route)
            bench.measure(res, srv, cfg=cfg, warmup=False)
            audit(bench, res, srv, routes)
        finally:
            bench.stop(srv)

    bench.scenario(KEYS[0], "sellout: bare Starlette (ceiling)", bare)
    bench.scenario(KEYS[1], "sellout: ticketd, durable, batched", ticketd)


def audit(bench: Bench, res: Result, srv: Server, routes: list[dict[str, Any]]) -> None:
    """Every train sold exactly, no seat twice, and as many bookings as wrk saw 201s."""
    assert res.run is not None
    sold = bookings = 0
    faults: list[str] = []
    for defn in routes:
        rid = route_id(defn)
        status, body = http("GET", f"{srv.base}/v1/routes/{rid}/bookings", token=bench.admin,
                            timeout=bench.args.ready_timeout)  # fmt: skip
        if status != 200:
            raise RuntimeError(f"audit: listing {rid}'s bookings: {status} {body[:300]!r}")
        held = [b for b in json.loads(body)["bookings"] if b["status"] not in RELEASED]
        taken = [(s["coach"], s["seat"]) for b in held for s in b["seats"]]
        bookings += len(held)
        sold += len(taken)
        # whole-route trips: one seat in two bookings is a seat sold twice
        if len(set(taken)) != len(taken):
            faults.append(f"{rid}: {len(taken) - len(set(taken))} seat(s) sold twice")
        if len(taken) != seats(defn):
            faults.append(f"{rid}: {len(taken)} of {seats(defn)} seats sold")
    res.sold = sold
    created = res.run.created
    res.notes.append(
        f"audit: {sold} of {on_sale()} seats sold in {bookings} bookings; wrk saw {created} x 201"
    )
    if bookings != created:
        faults.append(f"{bookings} bookings held but wrk saw {created} x 201")
    if faults:
        res.error = "audit: " + "; ".join(faults[:4])
    print(f"  {res.notes[-1]}" + (f"; {res.error}" if faults else ""), flush=True)

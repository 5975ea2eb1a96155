"""The waiting-room scenario: a crowd joining a sale's queue, then polling it, against
bare Starlette answering the very same requests.

ticketd holds a sale on one route that opens in an hour, so every join puts a new user
in the pre-queue (the joins of one event-loop turn share one fsync'd script call:
server/waiting/store.py, Joins) and every poll is a pre-queue user asking with the signed
ticket their join gave (answered from the front end's memory, no Redis read). The join
run is measured from its first request: each request is a new user (user n of the run),
so a warm-up would only join others. Then POLLERS of the users who joined poll in a
cycle, each about every POLLERS / rate seconds: slower than the 0.5 s a pre-queue caller
may poll at (advised 1 s), so a sound run sees no 429.

The audit: the sale counts exactly the joins answered 200 (none lost, none doubled).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.servers import Server, http
from harness.workload import Result, route_defs, route_id
from server.api.auth import mint
from server.waiting.tokens import Signer, Ticket

if TYPE_CHECKING:
    from harness.scenarios import Bench

#: rows in table order: each ceiling before ticketd's
JOIN_KEYS = ("join-bare", "join")
POLL_KEYS = ("poll-bare", "poll")
KEYS = (*JOIN_KEYS, *POLL_KEYS)
#: distinct users for the join run: more than it can join (a wrap-around is reported)
JOINERS = 250_000
#: the users who poll, in a cycle
POLLERS = 30_000
#: joins before the measured run, of users of their own (the path's first calls)
WARM_JOINS = 200


def queue_config(path: Path, method: str, queue_path: str, tokens: list[str], stride: int,
                 tickets: list[str] | None = None) -> Path:  # fmt: skip
    """The config bench/wrk/booking.lua reads in its queue mode."""

    def lua_list(items: list[str]) -> str:
        return "{" + ",".join(json.dumps(x) for x in items) + "}"

    listed = "nil" if tickets is None else lua_list(tickets)
    path.write_text(
        "return {\n"
        f"  tokens = {lua_list(tokens)},\n"
        f"  queue = {{method = {json.dumps(method)}, path = {json.dumps(queue_path)}, "
        f"stride = {stride}, tickets = {listed}}},\n"
        "}\n"
    )
    return path


def run(bench: Bench) -> None:
    """Joins and polls: bare Starlette, then ticketd (one server for both), on the same
    requests."""
    a = bench.args
    users = [f"q{u:06d}" for u in range(JOINERS)]
    tokens = [mint(bench.secret, u, ttl=6 * 3600) for u in users]
    stride = a.threads

    def counted(res: Result) -> None:
        res.counted = res.allowed = (200,)

    def bare(res: Result, method: str, n: int) -> None:
        counted(res)
        cfg = queue_config(bench.dir / f"wrk_{res.key}.lua", method, "/v1/sales/Sbench/queue",
                           tokens[:n], stride)  # fmt: skip
        bench.bare(res, cfg)

    bench.scenario(JOIN_KEYS[0], "queue joins: bare Starlette (ceiling)",
                   lambda r: bare(r, "POST", JOINERS))  # fmt: skip
    cluster_secret = secrets.token_urlsafe(32)
    route = route_defs(1, 8, train="WR")
    srv = bench.ticketd("waitingroom", route, TICKETD_CLUSTER_SECRET=cluster_secret)
    try:
        sale_id = _sale(bench, srv, route_id(route[0]))
        queue_path = f"/v1/sales/{sale_id}/queue"

        def joins(res: Result) -> None:
            counted(res)
            _warm(bench, srv, queue_path)
            cfg = queue_config(bench.dir / "wrk_join.lua", "POST", queue_path, tokens, stride)
            bench.measure(res, srv, cfg=cfg, warmup=False)
            _audit(bench, res, srv, sale_id)

        def polls(res: Result) -> None:
            counted(res)
            assert join.run is not None
            # users 0, 1, 2, ... joined in about that order (each wrk thread its share)
            n = min(POLLERS, join.run.statuses.get(200, 0) - 2 * bench.args.connections)
            signer = Signer(cluster_secret)
            until = time.time() + 6 * 3600
            tickets = [signer.ticket(Ticket(sale_id, u, 0, until)) for u in users[:n]]
            cfg = queue_config(bench.dir / "wrk_poll.lua", "GET", queue_path, tokens[:n],
                               stride, tickets)  # fmt: skip
            bench.measure(res, srv, cfg=cfg)
            res.notes.append(f"{n:,} users polling, each every {n / res.rate:.1f} s")

        join = bench.scenario(JOIN_KEYS[1], "queue joins: ticketd, pre-queue, durable", joins)
        if join.ok:
            bench.scenario(POLL_KEYS[1], "queue polls: ticketd, from memory", polls)
    finally:
        bench.stop(srv)
    bench.scenario(POLL_KEYS[0], "queue polls: bare Starlette (ceiling)",
                   lambda r: bare(r, "GET", POLLERS))  # fmt: skip


def _sale(bench: Bench, srv: Server, rid: str) -> str:
    """A sale on the route that opens in an hour: every join goes to its pre-queue."""
    opens_at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    body = {"routes": [rid], "opens_at": opens_at, "admit_per_second": 10}
    status, raw = http("POST", srv.base + "/v1/sales", body, token=bench.admin)
    if status != 201:
        raise RuntimeError(f"creating the sale: {status} {raw[:300]!r}")
    sale_id: str = json.loads(raw)["sale_id"]
    return sale_id


def _warm(bench: Bench, srv: Server, queue_path: str) -> None:
    for n in range(WARM_JOINS):
        token = mint(bench.secret, f"warm{n:04d}", ttl=3600)
        status, raw = http("POST", srv.base + queue_path, None, token=token)
        if status != 200:
            raise RuntimeError(f"warm-up join: {status} {raw[:300]!r}")


def _audit(bench: Bench, res: Result, srv: Server, sale_id: str) -> None:
    """The sale holds exactly the users whose join was answered (and the warm-up's)."""
    assert res.run is not None
    time.sleep(1.0)  # the figures a front end answers with are a keeper's pass old
    status, raw = http("GET", f"{srv.base}/v1/sales/{sale_id}", None, token=bench.admin)
    if status != 200:
        raise RuntimeError(f"reading the sale: {status} {raw[:300]!r}")
    joined = json.loads(raw)["joined"]
    answered = res.run.statuses.get(200, 0)
    res.notes.append(f"audit: the sale holds {joined:,} joins, {answered:,} x 200 + "
                     f"{WARM_JOINS} warm-up")  # fmt: skip
    # wrk stops counting with requests still in flight: those may have joined unanswered
    in_flight = res.run.requests - sum(res.run.statuses.values()) + bench.args.connections
    if res.run.requests > JOINERS:
        res.notes.append(f"{res.run.requests - JOINERS:,} requests joined again (wrapped)")
    elif not 0 <= joined - (answered + WARM_JOINS) <= in_flight:
        res.error = f"audit: {joined:,} joins held, {answered + WARM_JOINS:,} answered"
    print(f"  {res.notes[0]}", flush=True)

"""One run end to end: create routes, drive load, read the server back, audit, report."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from random import Random
from typing import Any

import msgspec

from loadgen.audit import AuditResult, ServerState, audit
from loadgen.auth import Tokens
from loadgen.client import Answer, Failure, Reply, TicketdClient
from loadgen.config import Config
from loadgen.driver import Driver, Limits, Listener
from loadgen.errors import RouteSetupFailed, ServerUnreachable
from loadgen.ledger import Ledger
from loadgen.plot import write_plot
from loadgen.progress import Progress, seats_left
from loadgen.report import Report, plot_path, write_report
from loadgen.routes import fresh_route, route_id, seat_count
from loadgen.scenarios import PLANS, seats_per_route, users_for
from loadgen.stats import Stats
from loadgen.wire import Booking, BookingList, RouteDef, decode

CONTROL_CONNECTIONS = 2
"""Set-up, progress polling and the audit use their own small session, so they neither wait
for nor take one of the `--concurrency` connections the load is measured on."""
NAME_TRIES = 8
READ_TRIES = 3


@dataclass(frozen=True)
class Side:
    """What a task run beside the load (`run(alongside=...)`) gets: the run's routes, its
    ledger (requests filed there are audited with the load's), the tokens, the load's start
    and deadline (loop times)."""

    config: Config
    routes: list[RouteDef]
    ledger: Ledger
    tokens: Tokens
    start: float
    deadline: float


async def run(
    config: Config,
    *,
    alongside: Callable[[Side], Coroutine[Any, Any, None]] | None = None,
    listener: Listener | None = None,
) -> Report:
    """Drive `config.scenario` against `config.url`, audit the result, write the report files.

    `alongside` runs beside the load from its start (it must end by the deadline; it is
    cancelled after the drain otherwise); `listener` hears of every request of the load.
    Raises ServerUnreachable or RouteSetupFailed when there is nothing to load.
    """
    if config.scenario not in PLANS:  # waiting-room: loadgen.waiting.runner.run
        raise ValueError(f"run() drives the booking scenarios; {config.scenario!r} has its own")
    loop = asyncio.get_running_loop()
    seed = config.seed if config.seed is not None else secrets.randbits(32)
    plan = PLANS[config.scenario]
    count = config.routes or plan.routes
    seats = config.seats or seats_per_route(plan, count, config.concurrency, config.duration)
    tokens, ledger = Tokens(config.jwt_secret), Ledger()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    # Six digits, not from the seed: passenger ids and keys must differ between runs.
    run_tag = f"{secrets.randbelow(1_000_000):06d}"
    rate = config.effective_rate

    async with TicketdClient(
        config.base_url, tokens, limit=CONTROL_CONNECTIONS, timeout=config.timeout
    ) as control:
        routes = await create_routes(control, count, plan.stations, seats)
        ledger.routes = {route_id(r): r for r in routes}
        users = users_for(config.concurrency, seats * len(routes))
        workload = plan.workload(routes, Random(seed), run_tag, users)
        async with TicketdClient(
            config.base_url, tokens, limit=config.concurrency, timeout=config.timeout
        ) as load:
            stats = Stats(loop.time())
            limits = Limits(
                deadline=stats.start + config.duration,
                concurrency=config.concurrency,
                rate=rate,
                max_requests=config.max_requests,
                drain=min(config.timeout, 5.0),
            )
            driver = Driver(load, workload, stats, ledger, limits, listener)
            beside: asyncio.Task[None] | None = None
            if alongside is not None:
                side = Side(config, routes, ledger, tokens, stats.start, limits.deadline)
                beside = asyncio.create_task(alongside(side))
            shown = None
            if config.progress:
                progress = Progress(driver, config.duration)
                shown = asyncio.create_task(progress.run(control, routes))
            try:
                ended = await driver.run()
                if beside is not None:
                    await asyncio.wait_for(asyncio.shield(beside), limits.drain + 30.0)
            finally:
                for task in (shown, beside):
                    if task is not None and not task.done():
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
        left = {route_id(r): await seats_left(control, r) for r in routes}
        server = await read_server(control, routes)

    if isinstance(server, ServerState):
        verdict = audit(ledger, server)
    else:
        verdict = AuditResult.not_run(server, indeterminate=ledger.indeterminate)
    elapsed = max(ended - stats.start, 1e-9)
    report = Report(
        scenario=config.scenario,
        url=config.base_url,
        mode="closed" if rate is None else "open",
        concurrency=config.concurrency,
        rate=rate,
        seed=seed,
        started_at=started_at,
        duration_s=round(elapsed, 3),
        requests=stats.requests,
        answered=stats.answered,
        throughput_rps=round(stats.answered / elapsed, 1),
        latency_ms=stats.latency(),
        latency_by_op_ms=stats.latency_by_op(),
        status_counts=dict(sorted(stats.status.items())),
        op_counts=dict(sorted(stats.ops.items())),
        acknowledged_bookings=ledger.acknowledged,
        indeterminate=ledger.indeterminate,
        routes=list(ledger.routes),
        seats={rid: seat_count(r) for rid, r in ledger.routes.items()},
        seats_left=left,
        schedule=None if rate is None else driver.schedule,
        timeline=stats.timeline(),
        audit=verdict,
    )
    if config.report is not None:
        png = plot_path(config.report)
        title = f"ticketd {config.scenario}: {report.mode} loop, concurrency {config.concurrency}"
        write_plot(report.timeline, png, title)
        report.plot = str(png)
        write_report(report, config.report)
    return report


async def create_routes(
    control: TicketdClient, count: int, stations: int, seats: int
) -> list[RouteDef]:
    """Create `count` new routes, each under a train name no earlier run used."""
    routes: list[RouteDef] = []
    for _ in range(count):
        for _ in range(NAME_TRIES):
            route = fresh_route(stations, seats)
            rid = route_id(route)
            if any(route_id(r) == rid for r in routes):
                continue
            answer = await control.create_route(route)
            if isinstance(answer, Failure):
                raise ServerUnreachable(control.base_url, f"{answer.kind}: {answer.detail}")
            # 200 (identical) or 409 (different): an earlier run took this name; pick another.
            if answer.status in (200, 409):
                continue
            if answer.status != 201:
                raise RouteSetupFailed(rid, answer.status, _problem_text(answer))
            created = decode(answer.body, RouteDef)
            if created is None or (created.route_id or rid) != rid:
                raise RouteSetupFailed(rid, 201, "but the reply is not this route's definition")
            routes.append(msgspec.structs.replace(route, route_id=rid))
            break
        else:
            raise RouteSetupFailed(rid, 409, f"{NAME_TRIES} fresh train names all existed")
    return routes


async def read_server(control: TicketdClient, routes: Sequence[RouteDef]) -> ServerState | str:
    """Every route's definition and admin list, or a sentence saying why they cannot be read."""
    definitions: dict[str, RouteDef | None] = {}
    lists: dict[str, tuple[Booking, ...]] = {}
    for route in routes:
        rid = route_id(route)
        answer = await _read(partial(control.get_route, rid))
        if not isinstance(answer, Reply) or answer.status not in (200, 404):
            return f"could not read route {rid}: {_describe(answer)}"
        definitions[rid] = decode(answer.body, RouteDef) if answer.ok else None
        answer = await _read(partial(control.route_bookings, rid))
        if not isinstance(answer, Reply) or not answer.ok:
            return f"could not read the admin list of {rid}: {_describe(answer)}"
        listing = decode(answer.body, BookingList)
        if listing is None:
            return f"the admin list of {rid} does not have the contract's shape"
        lists[rid] = listing.bookings
    return ServerState(routes=definitions, bookings=lists)


async def _read(call: Callable[[], Awaitable[Answer]]) -> Answer:
    """A read retried after failures and 5xx: the load just ended and may still be draining."""
    answer = await call()
    for attempt in range(1, READ_TRIES):
        if isinstance(answer, Reply) and answer.status < 500:
            break
        await asyncio.sleep(0.5 * attempt)
        answer = await call()
    return answer


def _problem_text(reply: Reply) -> str:
    problem = reply.problem()
    if problem is None:
        return reply.body[:200].decode("utf-8", "replace")
    return ": ".join(p for p in (problem.slug, problem.title, problem.detail) if p)


def _describe(answer: Answer) -> str:
    if isinstance(answer, Failure):
        return f"{answer.kind} ({answer.detail})"
    return f"HTTP {answer.status} {_problem_text(answer)}".rstrip()

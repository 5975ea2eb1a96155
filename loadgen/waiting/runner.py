"""One waiting-room run end to end: fresh routes, a sale on them, the crowd, the audit, the
report and its plot."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from random import Random

from rich.console import Console

from loadgen.auth import Tokens
from loadgen.client import Reply
from loadgen.errors import LoadgenError, ServerUnreachable
from loadgen.ledger import Ledger
from loadgen.progress import seats_left
from loadgen.report import plot_path, write_report
from loadgen.routes import route_id, seat_count
from loadgen.runner import CONTROL_CONNECTIONS, create_routes, read_server
from loadgen.stats import Latency, Stats
from loadgen.waiting.audit import SaleEnd, audit_waiting
from loadgen.waiting.client import SaleClient
from loadgen.waiting.config import WaitingConfig
from loadgen.waiting.crowd import crowd
from loadgen.waiting.history import History, Sample
from loadgen.waiting.play import Play
from loadgen.waiting.plot import write_plot
from loadgen.waiting.report import WaitingReport, tallies, timeline
from loadgen.waiting.scheduler import Scheduler
from loadgen.waiting.wire import Sale, SaleRequest
from loadgen.wire import RouteDef, decode

STATIONS = 5
SAMPLE_S = 0.5
WAKE_READS = 2
"""Per route, one per control connection: front-end workers link to an actor on first use."""
PROGRESS_S = 5.0


class SaleSetupFailed(LoadgenError):
    """The server refused the sale the run needs."""


async def run(config: WaitingConfig) -> WaitingReport:
    """Play the crowd against a new sale on new routes, audit, write the report files."""
    base = config.base
    loop = asyncio.get_running_loop()
    seed = base.seed if base.seed is not None else secrets.randbits(32)
    # Six digits, not from the seed: user and passenger ids must differ between runs.
    run_tag = f"{secrets.randbelow(1_000_000):06d}"
    tokens, ledger = Tokens(base.jwt_secret), Ledger()
    members = crowd(config, Random(seed), run_tag)
    for m in members:  # thousands of JWTs: minted before the clock starts
        tokens.user(m.user)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    async with SaleClient(
        base.base_url, tokens, limit=CONTROL_CONNECTIONS, timeout=base.timeout
    ) as control:
        routes = await create_routes(control, config.routes, STATIONS, config.seats)
        ledger.routes = {route_id(r): r for r in routes}
        await _wake(control, routes)
        start = loop.time()
        opens_at = datetime.now(UTC) + timedelta(seconds=config.opens_in)
        sale = await _create_sale(control, routes, opens_at, config.admit_per_second)
        history = History(opens_at=start + config.opens_in)
        async with SaleClient(
            base.base_url, tokens, limit=base.concurrency, timeout=base.timeout
        ) as load:
            stats, scheduler = Stats(start), Scheduler(base.concurrency)
            play = Play(load, sale.sale_id, routes, history, ledger, stats, scheduler,
                        Random(seed + 1), run_tag, config.spread)  # fmt: skip
            play.start(members)
            console = Console() if base.progress else None
            watch = asyncio.create_task(_watch(control, sale.sale_id, history, stats, console))
            try:
                finished = await scheduler.run(start + base.duration)
            finally:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
        ended = loop.time()
        final = await _read_sale(control, sale.sale_id)
        left = {route_id(r): await seats_left(control, r) for r in routes}
        server = await read_server(control, routes)
        await control.close_sale(sale.sale_id)  # its routes free again; nothing left to gate

    if isinstance(server, str):
        raise LoadgenError(f"the run ended but the server could not be read back: {server}")
    verdict = audit_waiting(history, ledger, SaleEnd(final, server, left))
    by_state, final_states, outcomes = tallies(history)
    report = WaitingReport(
        scenario=base.scenario, url=base.base_url, seed=seed, started_at=started_at,
        sale_id=sale.sale_id, opens_at=opens_at.isoformat(),
        admit_per_second=config.admit_per_second, routes=list(ledger.routes),
        seats={rid: seat_count(r) for rid, r in ledger.routes.items()},
        population=dict(Counter(m.kind.value for m in members)),
        connections=base.concurrency, duration_s=round(ended - start, 3), finished=finished,
        requests=stats.requests, answered=stats.answered,
        status_counts=dict(sorted(stats.status.items())), answers_by_state=by_state,
        final_states=final_states, outcomes=outcomes,
        acknowledged_bookings=ledger.acknowledged, indeterminate=ledger.indeterminate,
        latency_by_op_ms=stats.latency_by_op(),
        schedule_lag_ms=Latency.of(scheduler.lag_us), sale=final, seats_left=left,
        timeline=timeline(history, start, ended), audit=verdict,
    )  # fmt: skip
    if base.report is not None:
        png = plot_path(base.report)
        rate = "automatic" if config.admit_per_second is None else f"{config.admit_per_second:g}/s"
        title = (f"ticketd waiting room: {len(members):,} users, "
                 f"{sum(report.seats.values()):,} seats, admission {rate}")  # fmt: skip
        write_plot(report.timeline, png, title)
        report.plot = str(png)
        write_report(report, base.report)
    return report


async def _create_sale(
    control: SaleClient, routes: list[RouteDef], opens_at: datetime, rate: float | None
) -> Sale:
    request = SaleRequest(tuple(route_id(r) for r in routes), opens_at.isoformat(), rate)
    answer = await control.create_sale(request)
    if not isinstance(answer, Reply):
        raise ServerUnreachable(control.base_url, f"{answer.kind}: {answer.detail}")
    sale = decode(answer.body, Sale) if answer.status == 201 else None
    if sale is None:
        problem = answer.problem()
        why = f"{problem.slug}: {problem.detail}" if problem else answer.body[:200].decode()
        raise SaleSetupFailed(f"could not create the sale: HTTP {answer.status} {why}")
    return sale


async def _wake(control: SaleClient, routes: list[RouteDef]) -> None:
    """Wake the trains' actors before the sale, as an operator would before a flash sale: a
    cold actor's first call takes seconds (Ray activates it), and the first admitted buyers
    would measure that instead of the waiting room. An admin read of each route's bookings
    is a call to its actor that books nothing."""
    for route in routes:
        for _ in range(WAKE_READS):
            answer = await control.route_bookings(route_id(route))
            if not isinstance(answer, Reply) or not answer.ok:
                raise LoadgenError(f"route {route_id(route)} did not wake: {answer.key}")


async def _read_sale(control: SaleClient, sale_id: str) -> Sale | None:
    for attempt in range(3):
        answer = await control.sale(sale_id)
        if isinstance(answer, Reply) and answer.ok:
            return decode(answer.body, Sale)
        await asyncio.sleep(0.5 * (attempt + 1))
    return None


async def _watch(
    control: SaleClient, sale_id: str, history: History, stats: Stats, console: Console | None
) -> None:
    """Sample the sale's figures for the timeline (and show a line of progress now and then)."""
    loop = asyncio.get_running_loop()
    shown = loop.time()
    while True:
        answer = await control.sale(sale_id)
        sale = decode(answer.body, Sale) if isinstance(answer, Reply) and answer.ok else None
        now = loop.time()
        if sale is not None:
            history.samples.append(Sample(now, sale.state, sale.joined, sale.admitted))
        if console is not None and sale is not None and now - shown >= PROGRESS_S:
            shown = now
            console.print(
                f"t={now - history.opens_at:+6.1f}s  sale {sale.state}  places "
                f"{sale.queued:,}  admitted {sale.admitted:,}  requests {stats.requests:,}"
            )
        await asyncio.sleep(SAMPLE_S)

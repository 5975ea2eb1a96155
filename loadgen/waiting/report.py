"""A waiting-room run's report: JSON, the per-second timeline the PNG draws, and the summary
table on the terminal."""

from __future__ import annotations

import math
from collections import Counter

import msgspec
from rich.console import Group
from rich.table import Table
from rich.text import Text

from loadgen.stats import Latency
from loadgen.waiting.audit import WaitingAudit
from loadgen.waiting.history import History, Kind
from loadgen.waiting.wire import FINAL_STATES, Sale

#: the sale's states in which its queue still moves towards admission
ADMITTING = frozenset({"scheduled", "open", "paused"})


class Second(msgspec.Struct, frozen=True):
    """One second of the run, `t` counted from the opening (negative: before it)."""

    t: int
    queue: int
    """Users in the queue at the second's end, as loadgen saw them: joined, and not yet told
    admitted, sold out or closed."""
    server_queue: int | None
    """The server's queue: people who joined and are not admitted (joined − admitted), last
    sampled in that second while the sale admits (scheduled, open, paused); else None."""
    admitted: int
    """Users first told `admitted` in that second."""
    bookings: int
    """Bookings answered 201 in that second."""
    answers: int


class WaitingReport(msgspec.Struct, kw_only=True):
    """Everything a waiting-room run measured and found; `audit.ok` decides the exit code."""

    scenario: str
    url: str
    seed: int
    started_at: str
    sale_id: str
    opens_at: str
    admit_per_second: float | None
    routes: list[str]
    seats: dict[str, int]
    population: dict[str, int]
    connections: int
    duration_s: float
    finished: bool
    """Every user was done before the run's cap (--duration)."""
    requests: int
    answered: int
    status_counts: dict[str, int]
    answers_by_state: dict[str, int]
    final_states: dict[str, int]
    outcomes: dict[str, int]
    acknowledged_bookings: int
    indeterminate: int
    latency_by_op_ms: dict[str, Latency]
    schedule_lag_ms: Latency
    sale: Sale | None
    seats_left: dict[str, dict[str, int] | None]
    timeline: list[Second]
    audit: WaitingAudit
    plot: str | None = None


def timeline(history: History, start: float, end: float) -> list[Second]:
    """Per second from `start` to `end` (loop times), counted from the opening."""
    first = math.floor(start - history.opens_at)
    size = max(1, math.floor(end - history.opens_at) - first + 1)

    def at(t: float) -> int:
        return min(size - 1, max(0, math.floor(t - history.opens_at) - first))

    moves, admitted, bookings, answers = ([0] * size for _ in range(4))
    waiting: list[int | None] = [None] * size
    for mine in history.by_user().values():
        joined = next((x.received for x in mine if x.op == "join" and x.status == 200), None)
        final = next((x.received for x in mine if x.state in FINAL_STATES), None)
        told = next((x.received for x in mine if x.state == "admitted"), None)
        if joined is not None and (final is None or final > joined):
            moves[at(joined)] += 1
            if final is not None:
                moves[at(final)] -= 1
        if told is not None:
            admitted[at(told)] += 1
    for x in history.exchanges:
        if x.status is not None:
            answers[at(x.received)] += 1
        if x.op == "book" and x.status == 201:
            bookings[at(x.received)] += 1
    for s in history.samples:
        if s.state in ADMITTING:
            waiting[at(s.t)] = max(0, s.joined - s.admitted)
    queue, out = 0, []
    for k in range(size):
        queue += moves[k]
        out.append(Second(first + k, queue, waiting[k], admitted[k], bookings[k], answers[k]))
    return out


def tallies(history: History) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Queue answers by state; each queueing user's last state; each user's outcome."""
    by_state: Counter[str] = Counter()
    final: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for user, mine in history.by_user().items():
        kind = history.kinds.get(user)
        states = [x.state for x in mine if x.state is not None]
        by_state.update(states)
        if kind is not Kind.SKIP:
            final[states[-1] if states else "no answer"] += 1
        booked = any(x.op == "book" and x.status == 201 for x in mine)
        if booked:
            outcomes[f"{kind} booked"] += 1
        elif "admitted" in states:
            outcomes[f"{kind} admitted, no seat left"] += 1
        elif states and states[-1] in FINAL_STATES:
            outcomes[f"{kind} told {states[-1]}"] += 1
        else:
            outcomes[f"{kind} unfinished" if kind is not Kind.SKIP else f"{kind} refused"] += 1
    return (
        dict(sorted(by_state.items())),
        dict(sorted(final.items())),
        dict(sorted(outcomes.items())),
    )


def summary(report: WaitingReport) -> Group:
    """The end-of-run tables: the crowd, the sale, and the audit's verdict."""
    run = Table(title=f"loadgen waiting-room (sale {report.sale_id})", show_header=False)
    run.add_column(style="bold")
    run.add_column(justify="right")
    rate = "automatic" if report.admit_per_second is None else f"{report.admit_per_second:g}/s"
    rows = [
        ("duration", f"{report.duration_s:.1f} s" + ("" if report.finished else " (cut off)")),
        ("population", ", ".join(f"{k} {v:,}" for k, v in report.population.items())),
        ("admission", rate),
        ("requests", f"{report.requests:,} ({report.answered:,} answered)"),
        ("schedule lag p99 / max", f"{report.schedule_lag_ms.p99:,.0f} / "
                                   f"{report.schedule_lag_ms.max:,.0f} ms"),
    ]  # fmt: skip
    for op, lat in report.latency_by_op_ms.items():
        rows.append((f"{op} p50 / p99", f"{lat.p50:,.1f} / {lat.p99:,.1f} ms"))
    rows += [(f"{k}", f"{v:,}") for k, v in report.outcomes.items()]
    for name, value in rows:
        run.add_row(name, value)

    a = report.audit
    verdict = Table(title="waiting-room audit", show_header=False)
    verdict.add_column(style="bold")
    verdict.add_column(justify="right")
    o = a.pre_opening
    verdict.add_row("pre-queue rho (n)", f"{o.rho} ({o.n:,}): {o.verdict}")
    checks = [
        ("place inversions", a.place_inversions, f" of {a.causal_pairs:,} causal pairs"),
        ("admission inversions", a.admission_inversions, f" (step {a.admission_step_s:g} s)"),
        ("two places", a.two_places, ""),
        ("booked twice", a.booked_twice, ""),
        ("admitted beyond frontier", a.admitted_beyond_frontier, ""),
        ("unadmitted bookings", a.unadmitted_bookings + a.unadmitted_listed, ""),
        ("admission refused", a.admission_refused, ""),
        ("queue-skipper bookings", a.skip_bot_bookings, f" of {a.skip_bot_attempts} tries"),
        ("tight-poller jumps", a.tight_bot_jumps, ""),
    ]
    for name, count, note in checks:
        verdict.add_row(name, Text(f"{count:,}{note}", style="red bold" if count else "green"))
    sold = f"{a.seat_segments_sold:,} of {a.seat_segments:,} seat-segments"
    verdict.add_row("sold exactly", Text(sold, style="green" if a.sold_exactly else "red bold"))
    b = a.booking
    verdict.add_row("booking audit", f"{b.checked:,} acknowledged, lost {b.lost}, double-sold "
                    f"{b.double_sold}, phantom {b.phantom}")  # fmt: skip
    admitted = (
        f"{a.admitted_users:,} told, frontier {a.final_admitted} ({a.admitted_per_seat} a seat)"
    )
    verdict.add_row("admitted", admitted)
    verdict.add_row("joined after opens_at, before the draw", f"{a.late_drawn:,}")
    result = Text("PASS", style="green bold") if a.ok else Text("FAIL", style="red bold")
    verdict.add_row("result", result)
    notes = [Text(f"  {line}", style="red") for line in a.details[:10]]
    notes += [Text(f"  warning: {line}", style="yellow") for line in a.warnings]
    return Group(run, verdict, *notes)

"""The waiting room's audit: a pure function of the run's history, its booking ledger and
what the server shows at the end (issue 22).

Findings (each must be 0):

- place_inversions: two post-opening joiners, A's join answered before B's was sent, and A
  placed after B. Causal order is the only order the client can know, and it is exact.
- admission_inversions: A placed before B, yet told `waiting` by a poll sent more than one
  admission step (ADMISSION_STEP_S) after B's `admitted` answer arrived.
- two_places: a user shown two different places.
- admitted_beyond_frontier: admitted at a place past the sale's final `admitted` figure.
- booked_twice: a user with two successful bookings, or two live ones on the sale's trains.
- unadmitted_bookings: a 201 whose Admission header was not the user's own, given to them
  in an `admitted` answer before the booking was sent (none, forged or borrowed).
- unadmitted_listed: a booking on the sale's trains, whatever its status, of a user never
  told `admitted`: how a booking made without admission shows even if its answer was lost.
- admission_refused: an admitted user's booking answered 403 (a valid admission refused).
- skip_bot_bookings, skip_bot_not_refused: a queue-skipper booked, or got any answer but
  403 not-admitted. tight_bot_jumps: admission inversions that favoured a tight poller.
- the pre-queue's order: |rho| over 0.05 between join order and place, with at least
  RHO_MIN_N joiners (fewer: "not enough joiners to judge", no verdict).
- not sold exactly: seat-segments of live bookings differ from the trains' capacity, or some
  class still shows a seat end to end. With no seat-segment sold twice (the booking audit),
  equal counts mean every seat-segment was sold exactly once: exact, whatever the journeys.
- the booking audit of loadgen/audit.py (lost, changed, double_sold, phantom, ...).

Warnings, reported and not failed (the contract promises none of them in numbers): polls
sent no sooner than advised yet answered 429; automatic admission letting in more than
AUTOMATIC_FACTOR people per seat; seats that tight pollers booked while an honest user placed
before them got none (admitted in order, the bot still won by hearing it first).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from loadgen.audit import SEATED_STATUSES, AuditResult, ServerState, audit
from loadgen.ledger import Ledger
from loadgen.routes import seat_count
from loadgen.waiting.history import Exchange, History, Kind
from loadgen.waiting.order import count_before, count_pairs, spearman
from loadgen.waiting.wire import ADMITTED, WAITING, Sale
from loadgen.wire import RouteDef

RHO_LIMIT = 0.05
RHO_MIN_N = 5_000
ADMISSION_STEP_S = 1.0
"""How far apart two front ends may see admission: each moves the frontier and caches it in
its own keeper pass (every 0.2 s, plus the pass's own time under load). One second is five
passes; an inversion beyond it is not explained by a stale cache."""
AUTOMATIC_FACTOR = 1.5
"""Automatic admission keeps admitted-but-unbooked people within seats left × a factor
(docs/architecture.md, "The waiting room"); ticketd's is 1.5 (server/waiting/room.py). Over
a sale, that admits at most factor × seats people (each booking takes a seat)."""
ADVICE_SLACK_S = 0.001
MAX_DETAILS = 50
NOT_ENOUGH = "not enough joiners to judge"


class OrderCheck(msgspec.Struct, frozen=True):
    """Spearman's rho between the pre-queue's join order and its drawn places."""

    rho: float | None
    n: int
    limit: float
    min_n: int
    verdict: str
    """`uncorrelated`, `correlated` (fails) or `not enough joiners to judge`."""


class WaitingAudit(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    pre_opening: OrderCheck
    post_opening_joiners: int
    causal_pairs: int
    place_inversions: int
    admission_step_s: float
    admission_inversions: int
    tight_bot_jumps: int
    tight_bot_seats_ahead: int
    admitted_users: int
    final_admitted: int | None
    admitted_per_seat: float | None
    admitted_beyond_frontier: int
    two_places: int
    booked_twice: int
    unadmitted_bookings: int
    unadmitted_listed: int
    admission_refused: int
    skip_bot_attempts: int
    skip_bot_bookings: int
    skip_bot_not_refused: int
    unplaced: int
    """Users who never learned their place (the run ended first); left out of the checks."""
    late_drawn: int
    """Joins sent after opens_at and answered before the server's draw (its keeper draws
    at its first pass after opens_at): placed after the pre-queue in arrival order, and
    checked with the post-opening joiners."""
    polite_429: int
    seat_segments_sold: int
    seat_segments: int
    seats_sold: int
    capacity: int
    sold_exactly: bool
    booking: AuditResult
    details: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SaleEnd:
    """What the server shows once the load ended."""

    sale: Sale | None
    server: ServerState
    seats_left: Mapping[str, Mapping[str, int] | None]


@dataclass(slots=True)
class Seen:
    """One user's history, as the checks need it."""

    kind: Kind
    join_sent: float | None = None
    join_received: float | None = None
    drawn: bool = False
    """The first join was answered from the pre-queue (place null)."""
    places: list[int] = field(default_factory=list)
    admitted_at: float | None = None
    last_waiting_sent: float | None = None
    created: int = 0
    """201 answers to this user's bookings."""


def observe(history: History) -> dict[str, Seen]:
    """Each user's join, places and admission as the run saw them."""
    seen: dict[str, Seen] = {}
    for user, exchanges in history.by_user().items():
        s = seen[user] = Seen(history.kinds.get(user, Kind.EARLY))
        for x in exchanges:
            if x.op == "book" and x.status == 201:
                s.created += 1
            if x.status != 200 or x.op not in ("join", "poll"):
                continue
            if x.op == "join" and s.join_sent is None:
                s.join_sent, s.join_received, s.drawn = x.sent, x.received, x.place is None
            if x.place is not None and x.place not in s.places:
                s.places.append(x.place)
            if x.state == ADMITTED and s.admitted_at is None:
                s.admitted_at = x.received
            if x.state == WAITING and x.place is not None:
                s.last_waiting_sent = max(s.last_waiting_sent or x.sent, x.sent)
    return seen


def judge_order(joins: list[tuple[float, int]]) -> OrderCheck:
    """Spearman's rho between join order and place over (join time, place) pairs."""
    rho = spearman([t for t, _ in joins], [p for _, p in joins])
    n = len(joins)
    if n < RHO_MIN_N or rho is None:
        verdict = NOT_ENOUGH
    else:
        verdict = "uncorrelated" if abs(rho) <= RHO_LIMIT else "correlated"
    shown = None if rho is None else round(rho, 5)
    return OrderCheck(rho=shown, n=n, limit=RHO_LIMIT, min_n=RHO_MIN_N, verdict=verdict)


def place_inversions(joins: list[tuple[float, float, int]]) -> tuple[int, int]:
    """Over (join sent, join answered, place) of post-opening joiners: how many pairs are
    causally ordered (A answered before B was sent), and how many of those have A placed
    after B."""
    pairs = count_before([r for _, r, _ in joins], [s for s, _, _ in joins])
    # query B: (place, sent); item A: (place, received): A.place > B.place, A.received < B.sent
    inverted = count_pairs([(p, s) for s, _, p in joins], [(p, r) for _, r, p in joins])
    return pairs, inverted


def admission_inversions(
    waiting: list[tuple[int, float]], admitted: list[tuple[int, float]], step: float
) -> int:
    """Pairs of A (place, last `waiting` poll sent) and B (place, first `admitted` answer
    received) with A placed before B but still waiting more than `step` after B was in."""
    return count_pairs([(p, t - step) for p, t in waiting], admitted)


def unadmitted_bookings(exchanges: Mapping[str, list[Exchange]]) -> list[str]:
    """Every 201 whose Admission header was not one the user had been given, admitted,
    before sending it."""
    found: list[str] = []
    for user, mine in exchanges.items():
        given: list[tuple[float, str]] = [
            (x.received, x.admission) for x in mine if x.state == ADMITTED and x.admission
        ]
        for x in mine:
            if x.op != "book" or x.status != 201:
                continue
            if not any(t <= x.sent and token == x.carried for t, token in given):
                how = "no admission" if x.carried is None else "an admission not given to it"
                found.append(f"{user} booked at {x.sent:.3f} with {how}")
    return found


def polite_429(exchanges: Mapping[str, list[Exchange]], kinds: Mapping[str, Kind]) -> int:
    """Honest users' polls answered 429 although sent no sooner than the last advice."""
    count = 0
    for user, mine in exchanges.items():
        if kinds.get(user) not in (Kind.EARLY, Kind.LATE):
            continue
        last: Exchange | None = None
        for x in mine:
            if x.op not in ("join", "poll"):
                continue
            advised = None if last is None else last.received + (last.advice or 0.0)
            if x.op == "poll" and x.status == 429 and advised is not None:
                count += x.sent + ADVICE_SLACK_S >= advised
            last = x
    return count


def sold(end: SaleEnd, routes: Mapping[str, RouteDef]) -> tuple[int, int, int, int]:
    """Seat-segments sold and on the trains, and whole-journey seats sold and on the trains,
    over the sale's routes (live bookings only)."""
    sold_segments = segments = seats_sold = capacity = 0
    for rid, route in routes.items():
        legs = len(route.stations) - 1
        segments += seat_count(route) * legs
        capacity += seat_count(route)
        for b in end.server.bookings.get(rid, ()):
            if b.status not in SEATED_STATUSES:
                continue
            try:
                i, j = route.stations.index(b.origin), route.stations.index(b.destination)
            except ValueError:
                continue  # the booking audit calls it invalid
            sold_segments += len(b.seats) * max(0, j - i)
            seats_sold += len(b.seats) if (i, j) == (0, legs) else 0
    return sold_segments, segments, seats_sold, capacity


def audit_waiting(history: History, ledger: Ledger, end: SaleEnd) -> WaitingAudit:
    """Every check of the module's docstring over one run."""
    details: list[str] = []
    seen = observe(history)
    mine = history.by_user()
    opens_at = history.opens_at
    # a join sent after opens_at and answered before the draw (a latecomer) is placed
    # after the drawn pre-queue in arrival order: checked with the post-opening joiners
    pre = [
        (s.join_sent, s.places[0])
        for s in seen.values()
        if s.drawn and s.places and s.join_sent is not None and s.join_sent <= opens_at
    ]
    post = [
        (s.join_sent, s.join_received, s.places[0])
        for s in seen.values()
        if s.join_sent is not None
        and s.join_received is not None
        and s.places
        and (not s.drawn or s.join_sent > opens_at)
    ]
    order = judge_order([(t, p) for t, p in pre if t is not None])
    causal, inverted = place_inversions(post)
    waiting = [(s.places[0], s.last_waiting_sent) for s in seen.values()
               if s.places and s.last_waiting_sent is not None]  # fmt: skip
    admitted = {u: (s.places[0], s.admitted_at) for u, s in seen.items()
                if s.places and s.admitted_at is not None}  # fmt: skip
    jumps_all = admission_inversions(waiting, list(admitted.values()), ADMISSION_STEP_S)
    tight = [v for u, v in admitted.items() if seen[u].kind is Kind.TIGHT]
    jumps_tight = admission_inversions(waiting, tight, ADMISSION_STEP_S)
    honest = (Kind.EARLY, Kind.LATE)
    unseated = [
        s.places[0] for s in seen.values() if s.kind in honest and s.places and not s.created
    ]
    first_unseated = min(unseated, default=None)
    seats_ahead = sum(
        s.created for s in seen.values()
        if s.kind is Kind.TIGHT and s.places and first_unseated is not None
        and s.places[0] > first_unseated
    )  # fmt: skip

    frontier = end.sale.admitted if end.sale is not None else None
    beyond = [u for u, (p, _) in admitted.items() if frontier is not None and p > frontier]
    two = [u for u, s in seen.items() if len(s.places) > 1]
    unadmitted = unadmitted_bookings(mine)
    live: Counter[str] = Counter()
    users_listed: set[str] = set()
    for rid in ledger.routes:
        for b in end.server.bookings.get(rid, ()):
            users_listed.add(b.user or "?")
            if b.status in SEATED_STATUSES:
                live[b.user or "?"] += 1
    twice = {u for u, s in seen.items() if s.created > 1} | {u for u, n in live.items() if n > 1}
    ever_admitted = {u for u, s in seen.items() if s.admitted_at is not None}
    listed_unadmitted = sorted(users_listed - ever_admitted)
    refused = [x for u, xs in mine.items() if history.kinds.get(u) in (Kind.EARLY, Kind.LATE)
               for x in xs if x.op == "book" and x.status == 403]  # fmt: skip
    skips = [x for u, xs in mine.items() if history.kinds.get(u) is Kind.SKIP
             for x in xs if x.op == "book"]  # fmt: skip
    skip_booked = [x for x in skips if x.status == 201]
    not_refused = [x for x in skips if x.status is not None and
                   (x.status, x.slug) != (403, "not-admitted")]  # fmt: skip
    late_drawn = sum(1 for s in seen.values() if s.drawn and (s.join_sent or 0) > history.opens_at)
    unplaced = sum(1 for s in seen.values() if s.kind is not Kind.SKIP and not s.places)

    sold_segments, segments, seats_sold, capacity = sold(end, ledger.routes)
    left_zero = all(
        left is not None and all(v == 0 for v in left.values()) for left in end.seats_left.values()
    )
    exact = sold_segments == segments and left_zero
    booking = audit(ledger, end.server)

    def note(kind: str, items: list[str]) -> None:
        details.extend(f"{kind}: {item}" for item in items[: MAX_DETAILS - len(details)])

    note("unadmitted booking", unadmitted)
    note("listed booking of a user never admitted", listed_unadmitted)
    note("two places", two)
    note("booked twice", sorted(twice))
    note("admitted beyond the frontier", beyond)
    note("queue-skipper answered", [f"{x.user}: {x.status} {x.slug or ''}" for x in not_refused])
    note("admission refused", [f"{x.user}: {x.slug}" for x in refused])
    if inverted:
        note("post-opening joiners placed out of join order", [f"{inverted} pairs"])
    if jumps_all:
        note("admitted out of place order", [f"{jumps_all} pairs beyond {ADMISSION_STEP_S} s"])
    if order.verdict == "correlated":
        note("pre-queue order", [f"rho {order.rho} over {order.n} joiners"])
    if not exact:
        shown = {rid: dict(v) if v is not None else None for rid, v in end.seats_left.items()}
        note("not sold exactly", [f"{sold_segments} of {segments} seat-segments, left {shown}"])
    failures = (
        inverted, jumps_all, len(beyond), len(two), len(twice), len(unadmitted),
        len(listed_unadmitted), len(refused), len(skip_booked), len(not_refused),
    )  # fmt: skip
    ok = (
        not any(failures) and order.verdict != "correlated" and exact and booking.ok
        and end.sale is not None
    )  # fmt: skip
    if end.sale is None:
        note("sale", ["its final figures could not be read"])
    per_seat = round(frontier / capacity, 3) if frontier is not None and capacity else None
    warnings = []
    polite = polite_429(mine, history.kinds)
    if polite:
        warnings.append(f"{polite} polls sent no sooner than advised were answered 429")
    if seats_ahead:
        warnings.append(
            f"tight pollers booked {seats_ahead} seats while an honest user placed before "
            "them got none"
        )
    automatic = end.sale is not None and end.sale.admit_per_second is None
    if automatic and frontier is not None and frontier > math.ceil(AUTOMATIC_FACTOR * capacity):
        warnings.append(
            f"automatic admission admitted {frontier} people for {capacity} seats "
            f"({per_seat} a seat; its rule allows {AUTOMATIC_FACTOR:g})"
        )
    return WaitingAudit(
        ok=ok, pre_opening=order, post_opening_joiners=len(post), causal_pairs=causal,
        place_inversions=inverted, admission_step_s=ADMISSION_STEP_S,
        admission_inversions=jumps_all, tight_bot_jumps=jumps_tight,
        tight_bot_seats_ahead=seats_ahead,
        admitted_users=len(ever_admitted), final_admitted=frontier, admitted_per_seat=per_seat,
        admitted_beyond_frontier=len(beyond), two_places=len(two), booked_twice=len(twice),
        unadmitted_bookings=len(unadmitted), unadmitted_listed=len(listed_unadmitted),
        admission_refused=len(refused), skip_bot_attempts=len(skips),
        skip_bot_bookings=len(skip_booked), skip_bot_not_refused=len(not_refused),
        unplaced=unplaced, late_drawn=late_drawn, polite_429=polite,
        seat_segments_sold=sold_segments, seat_segments=segments, seats_sold=seats_sold,
        capacity=capacity, sold_exactly=exact, booking=booking, details=tuple(details),
        warnings=tuple(warnings),
    )  # fmt: skip

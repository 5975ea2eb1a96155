"""The Jepsen-style audit: a pure function from what loadgen sent to what the server reports.

Findings, each counted once per offending booking (per seat, for double sales):

- lost: an acknowledged booking missing from its route's admin list.
- changed: an acknowledged booking listed with other seats, journey, passengers or user than
  acknowledged, or in a status that loadgen's own later confirms/cancels (and hold expiry) do
  not explain.
- double_sold: a live booking's seat that an earlier-listed live booking holds on an
  overlapping segment (counted once per seat of each later booking).
- phantom: a listed booking no request of loadgen's can account for (unknown passengers, or a
  request the server had definitely rejected).
- duplicated: one request (one idempotency key) applied more than once.
- invalid: a listing that breaks the contract: unknown station or seat, wrong class, seats that
  do not match the passengers, a route definition that differs from the one created.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from loadgen.ledger import Action, BookAttempt, Ledger, Outcome
from loadgen.wire import LIVE_STATUSES, Booking, RouteDef, Seat

KNOWN_STATUSES = LIVE_STATUSES | {"cancelled", "expired"}
SEATED_STATUSES = frozenset({"held", "confirmed"})
MAX_DETAILS = 50


@dataclass(frozen=True)
class ServerState:
    """What the server reports at the end: route definitions and every route's admin list."""

    routes: Mapping[str, RouteDef | None]
    bookings: Mapping[str, Sequence[Booking]]


class AuditResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    checked: int = 0
    lost: int = 0
    changed: int = 0
    double_sold: int = 0
    phantom: int = 0
    duplicated: int = 0
    invalid: int = 0
    indeterminate: int = 0
    indeterminate_applied: int = 0
    server_bookings: int = 0
    details: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def not_run(cls, error: str, *, indeterminate: int = 0) -> AuditResult:
        """A failed audit because the server's side could not be read."""
        return cls(ok=False, indeterminate=indeterminate, error=error, details=(error,))


class _Findings:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.details: list[str] = []

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append(f"{kind}: {message}")


def audit(ledger: Ledger, server: ServerState) -> AuditResult:
    """Check the server's final state against everything loadgen sent and was told."""
    found = _Findings()
    _check_routes(ledger.routes, server.routes, found)
    listed = _dedupe(server.bookings, found)
    for route_id, booking in listed.values():
        _validate(booking, route_id, ledger.routes.get(route_id), found)

    acked: dict[str, BookAttempt] = {}
    for sent in ledger.attempts:
        if sent.outcome is Outcome.ACKNOWLEDGED and sent.booking is not None:
            booking_id = sent.booking.booking_id
            if booking_id in acked:  # two requests acknowledged as one booking: one is gone
                found.add("lost", f"{booking_id} was acknowledged to {sent.key} and another")
            else:
                acked[booking_id] = sent
    by_passengers = {(a.route_id, frozenset(a.passenger_ids)): a for a in ledger.attempts}
    applied: Counter[str] = Counter()
    for route_id, booking in listed.values():
        if booking.booking_id in acked or booking.passengers is None:
            continue
        attempt = by_passengers.get((route_id, frozenset(p.id for p in booking.passengers)))
        if attempt is None:
            found.add("phantom", f"{_describe(booking)}: passengers loadgen never sent")
        elif attempt.outcome is Outcome.REJECTED:
            found.add("phantom", f"{_describe(booking)}: applies request {attempt.key}, rejected")
        else:
            applied[attempt.key] += 1

    actions: dict[str, list[Action]] = defaultdict(list)
    for action in ledger.actions:
        actions[action.booking_id].append(action)
    for booking_id, attempt in acked.items():
        entry = listed.get(booking_id)
        if entry is None:
            found.add("lost", f"{attempt.route_id} booking {booking_id} is not in the admin list")
            continue
        applied[attempt.key] += 1
        problems = _differences(attempt, actions.get(booking_id, []), entry[1])
        if problems:
            found.add("changed", f"{_describe(entry[1])}: {'; '.join(problems)}")

    for key, times in applied.items():
        if times > 1:
            found.add("duplicated", f"request {key} was applied {times} times")
    _check_double_sales(ledger.routes, listed.values(), found)

    indeterminate = [a for a in ledger.attempts if a.outcome is Outcome.INDETERMINATE]
    counts = found.counts
    return AuditResult(
        ok=not counts,
        checked=ledger.acknowledged,
        lost=counts["lost"],
        changed=counts["changed"],
        double_sold=counts["double_sold"],
        phantom=counts["phantom"],
        duplicated=counts["duplicated"],
        invalid=counts["invalid"],
        indeterminate=ledger.indeterminate,
        indeterminate_applied=sum(1 for a in indeterminate if applied[a.key]),
        server_bookings=len(listed),
        details=tuple(found.details),
    )


def allowed_statuses(attempt: BookAttempt, actions: Iterable[Action]) -> frozenset[str]:
    """Statuses the booking may show given its reply and loadgen's later confirms and cancels."""
    status = attempt.booking.status if attempt.booking is not None else "held"
    # A hold can run out; a waitlist entry can be promoted to a hold, which can run out too.
    base = {"held": {"held", "expired"}, "waitlisted": {"waitlisted", "held", "expired"}}
    allowed = set(base.get(status, {status}))
    outcomes = {(a.kind, a.outcome) for a in actions}
    if ("cancel", Outcome.ACKNOWLEDGED) in outcomes:
        return frozenset({"cancelled"})
    if ("confirm", Outcome.ACKNOWLEDGED) in outcomes:
        allowed = {"confirmed"}
    elif ("confirm", Outcome.INDETERMINATE) in outcomes:
        allowed.add("confirmed")
    if ("cancel", Outcome.INDETERMINATE) in outcomes:
        allowed.add("cancelled")
    return frozenset(allowed)


def _check_routes(
    created: Mapping[str, RouteDef], served: Mapping[str, RouteDef | None], found: _Findings
) -> None:
    for route_id, route in created.items():
        other = served.get(route_id)
        if other is None:
            found.add("invalid", f"route {route_id} has no definition on the server")
        elif not route.same_layout(other) or other.route_id not in (None, route_id):
            found.add("invalid", f"route {route_id} is served with a different definition")


def _dedupe(
    lists: Mapping[str, Sequence[Booking]], found: _Findings
) -> dict[str, tuple[str, Booking]]:
    listed: dict[str, tuple[str, Booking]] = {}
    for route_id, bookings in lists.items():
        for booking in bookings:
            if booking.booking_id in listed:
                found.add("invalid", f"{_describe(booking)} is listed more than once")
            else:
                listed[booking.booking_id] = (route_id, booking)
    return listed


def _validate(booking: Booking, route_id: str, route: RouteDef | None, found: _Findings) -> None:
    problems = _contract_violations(booking, route_id, route)
    if problems:
        found.add("invalid", f"{_describe(booking)}: {'; '.join(problems)}")


def _contract_violations(booking: Booking, route_id: str, route: RouteDef | None) -> list[str]:
    problems: list[str] = []
    if booking.route_id != route_id:
        problems.append(f"listed under {route_id}")
    if booking.status not in KNOWN_STATUSES:
        problems.append(f"unknown status {booking.status!r}")
    if booking.passengers is None:
        problems.append("no passengers in the admin list")
    elif not 1 <= len(booking.passengers) <= 5:
        problems.append(f"{len(booking.passengers)} passengers")
    if booking.status == "waitlisted" and booking.seats:
        problems.append("waitlisted but holds seats")
    n = len(booking.passengers or ())
    if booking.status in SEATED_STATUSES and len(booking.seats) != n:
        problems.append(f"{len(booking.seats)} seats for {n} passengers")
    if len({(s.coach, s.seat) for s in booking.seats}) != len(booking.seats):
        problems.append("the same seat twice")
    if sorted(s.passenger for s in booking.seats) != list(range(len(booking.seats))):
        problems.append("seat passenger indexes are not 0..n-1")
    if route is not None:
        if _segments(route, booking) is None:
            problems.append(f"no journey {booking.origin!r} → {booking.destination!r}")
        problems.extend(
            f"no {booking.klass} seat {s.coach}/{s.seat}"
            for s in booking.seats
            if not _seat_exists(route, booking.klass, s)
        )
    return problems


def _seat_exists(route: RouteDef, klass: str, seat: Seat) -> bool:
    row, letter = seat.seat[:-1], seat.seat[-1:]
    for coach in route.coaches:
        if coach.number == seat.coach:
            return (
                coach.klass == klass
                and row.isdigit()
                and 1 <= int(row) <= coach.rows
                and letter != ""
                and letter in coach.letters
            )
    return False


def _segments(route: RouteDef, booking: Booking) -> int | None:
    """The segment bitmask of the booking's journey, or None if its stations are not a journey."""
    try:
        i, j = route.stations.index(booking.origin), route.stations.index(booking.destination)
    except ValueError:
        return None
    return ((1 << (j - i)) - 1) << i if i < j else None


def _differences(attempt: BookAttempt, actions: Sequence[Action], listed: Booking) -> list[str]:
    request, problems = attempt.request, []
    if listed.route_id != attempt.route_id:
        problems.append(f"moved from route {attempt.route_id}")
    journey = (request.origin, request.destination, request.klass)
    if (listed.origin, listed.destination, listed.klass) != journey:
        problems.append(f"journey/class differ from the request {journey}")
    if listed.user is not None and listed.user != attempt.user:
        problems.append(f"belongs to {listed.user!r}, not {attempt.user!r}")
    if listed.passengers is not None and tuple(p.id for p in listed.passengers) != tuple(
        attempt.passenger_ids
    ):
        problems.append("passengers differ from the request")
    allowed = allowed_statuses(attempt, actions)
    if listed.status not in allowed:
        problems.append(f"status {listed.status}, expected one of {sorted(allowed)}")
    promised = {
        frozenset(reply.seats)
        for reply in [attempt.booking, *(a.booking for a in actions if a.kind == "confirm")]
        if reply is not None and reply.seats
    }
    if len(promised) > 1:
        problems.append("replies acknowledged different seats")
    elif promised and listed.seats:
        if frozenset(listed.seats) != next(iter(promised)):
            problems.append(f"seats {_seats(listed.seats)}, acknowledged otherwise")
    elif promised and listed.status in SEATED_STATUSES:
        problems.append("acknowledged seats are gone")
    return problems


def _check_double_sales(
    routes: Mapping[str, RouteDef], listed: Iterable[tuple[str, Booking]], found: _Findings
) -> None:
    occupied: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for route_id, booking in listed:
        route = routes.get(route_id)
        # An unknown status is treated as live: the audit must not excuse a double sale.
        if route is None or booking.status in KNOWN_STATUSES - LIVE_STATUSES:
            continue
        mask = _segments(route, booking)
        if mask is None:
            continue
        for coach, seat in sorted({(s.coach, s.seat) for s in booking.seats}):
            holders = occupied[(route_id, coach, seat)]
            # Once per seat of a booking that overlaps an earlier holder: n sales of one seat
            # segment count n - 1, not the n(n-1)/2 pairs.
            other = next((other for m, other in holders if m & mask), None)
            if other is not None:
                found.add(
                    "double_sold",
                    f"{route_id} seat {coach}/{seat} of {booking.booking_id} overlaps {other}",
                )
            holders.append((mask, booking.booking_id))


def _describe(booking: Booking) -> str:
    return f"{booking.route_id} booking {booking.booking_id} ({booking.status})"


def _seats(seats: Iterable[Seat]) -> str:
    return ",".join(sorted(f"{s.coach}/{s.seat}" for s in seats))

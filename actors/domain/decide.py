"""`decide(state, command) -> events + answer`, and the batch loop around it.

decide never mutates the state; `execute` applies the events it returns so
the next command in the same batch sees them.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from actors.domain.errors import (
    BookingNotFound,
    DomainError,
    HoldExpired,
    IdempotencyMismatch,
    InvalidRequest,
    InvalidTransition,
    PassengerConflict,
    SeatTaken,
    SoldOut,
    TooManyBookings,
)
from actors.domain.messages import (
    Book,
    Cancel,
    Cancelled,
    Change,
    Changed,
    Command,
    Confirm,
    Confirmed,
    Event,
    Expired,
    GetBooking,
    Held,
    ListBookings,
    Served,
    Sweep,
    Waitlisted,
)
from actors.domain.route import resolve_trip, trip_mask
from actors.domain.state import LIVE, Booking, RouteState, apply
from actors.domain.views import Record, Result, origin_record, record

MAX_PASSENGERS = 5


@dataclass(frozen=True, slots=True)
class Policy:
    hold_seconds: float = 600.0
    user_cap: int = 5


@dataclass(slots=True)
class Decision:
    events: list[Event] = field(default_factory=list)
    kind: str = "ok"  # "created" | "waitlisted" | "ok"
    record: Record | None = None
    records: list[Record] | None = None
    frees_seats: bool = False


def decide(state: RouteState, cmd: Command, policy: Policy, now: float) -> Decision:
    """Events and answer for one command against `state`; raises DomainError."""
    match cmd:
        case Book():
            return _book(state, cmd, policy, now)
        case Confirm():
            b = _own(state, cmd.booking_id, cmd.user)
            if b.status == "confirmed":
                return Decision(record=record(b))
            if b.status == "expired" or (
                b.status == "held" and b.hold_expires_at is not None and now >= b.hold_expires_at
            ):
                raise HoldExpired(b.booking_id)
            if b.status != "held":
                raise InvalidTransition(b.booking_id, b.status, "confirmed")
            return Decision([Confirmed(b.booking_id, now)])
        case Cancel():
            b = _own(state, cmd.booking_id, cmd.user)
            if b.status == "cancelled":
                return Decision(record=record(b))
            if b.status not in LIVE:
                raise InvalidTransition(b.booking_id, b.status, "cancelled")
            return Decision([Cancelled(b.booking_id, now)], frees_seats=b.status != "waitlisted")
        case Change():
            return _change(state, cmd, now)
        case GetBooking():
            return Decision(record=record(_own(state, cmd.booking_id, cmd.user)))
        case ListBookings():
            return Decision(records=[record(b) for b in state.bookings.values()])
        case Sweep():
            events: list[Event] = []
            due: list[tuple[float, str]] = []
            holds = state.holds
            while holds and holds[0][0] <= now:
                # the heap is append-only; a stale entry (confirmed, cancelled, re-held) is
                # dropped for good
                deadline, bid = heapq.heappop(holds)
                b = state.bookings[bid]
                if b.status == "held" and b.hold_expires_at == deadline:
                    due.append((deadline, bid))
                    events.append(Expired(bid, now))
            # decide leaves the state as it found it: if these events are never applied (the
            # journal write failed), the next sweep must still find the due holds; once the
            # Expired events are applied, the entries are stale and dropped then
            for entry in due:
                heapq.heappush(holds, entry)
            return Decision(events, frees_seats=bool(events))
    raise InvalidRequest(f"Unknown command {type(cmd).__name__}.")


def execute(state: RouteState, cmd: Command, policy: Policy, now: float) -> Decision:
    """decide, apply, then serve the waitlist if seats came free."""
    decision = decide(state, cmd, policy, now)
    for event in decision.events:
        apply(state, event)
    if decision.frees_seats and state.waitlist:
        for event in serve_waitlist(state, policy, now):
            decision.events.append(event)
    if decision.record is None and decision.events:
        # answer with the booking as it stands after its own events
        bid = getattr(cmd, "booking_id", None)
        if bid is not None:
            decision.record = record(state.bookings[bid])
    return decision


def serve_waitlist(state: RouteState, policy: Policy, now: float) -> list[Event]:
    """Serve waiting requests in arrival order, each only if its whole group fits."""
    events: list[Event] = []
    for bid in list(state.waitlist):
        b = state.bookings[bid]
        seats = state.inv.choose(
            b.klass, b.from_idx, b.to_idx, len(b.passengers), b.letters, b.together
        )
        if seats is not None:
            event = Served(bid, seats, now, now + policy.hold_seconds)
            apply(state, event)
            events.append(event)
    return events


def run_batch(
    state: RouteState, commands: list[Command], policy: Policy, now: float
) -> tuple[list[Event], list[Result]]:
    """Execute a batch in order; one result per command, all events in journal order.

    The caller must persist the events before anyone sees a result.
    """
    events: list[Event] = []
    results: list[Result] = []
    for cmd in commands:
        try:
            d = execute(state, cmd, policy, now)
        except DomainError as err:
            results.append(Result(False, error=err.to_dict()))
            continue
        events.extend(d.events)
        results.append(Result(True, d.kind, d.record, d.records))
    return events, results


# ---- helpers ---------------------------------------------------------------------


def _own(state: RouteState, booking_id: str, user: str) -> Booking:
    b = state.bookings.get(booking_id)
    # another user's booking is indistinguishable from a missing one (no enumeration)
    if b is None or b.user != user:
        raise BookingNotFound(booking_id)
    return b


def _trip(state: RouteState, from_: str, to: str, klass: str) -> tuple[int, int]:
    return resolve_trip(
        state.route.route_id, state.station_index, state.inv.classes, from_, to, klass
    )


def _check_passengers(
    state: RouteState, ids: list[str], mask: int, exclude: str | None = None
) -> None:
    for pid in ids:
        for bid in state.by_passenger.get(pid, ()):
            if bid != exclude and state.bookings[bid].mask & mask:
                raise PassengerConflict(state.route.route_id, pid, bid)


def _picked(state: RouteState, cmd: Book, i: int, j: int) -> list[int]:
    """The seats the buyer picked, if every one is of the class and free for the trip."""
    inv, mask = state.inv, trip_mask(i, j)
    if cmd.waitlist or len(cmd.seats) != len(cmd.passengers):
        raise InvalidRequest("Pick one seat per passenger, and do not ask for the waitlist too.")
    if len(set(cmd.seats)) != len(cmd.seats):
        raise InvalidRequest("Each picked seat may appear only once in a booking.")
    for index in cmd.seats:
        if not 0 <= index < len(inv.seats) or inv.seats[index].klass != cmd.klass:
            raise InvalidRequest(f"Seat {index} is not a {cmd.klass} seat of this route.")
        if inv.bits[index] & mask:
            seat = inv.seats[index]
            name = f"{seat.coach}-{seat.name}"
            raise SeatTaken(state.route.route_id, name, cmd.from_, cmd.to)
    return list(cmd.seats)


def _book(state: RouteState, cmd: Book, policy: Policy, now: float) -> Decision:
    known = state.idem.get((cmd.user, cmd.key))
    if known is not None:
        b = state.bookings[known]
        if b.fingerprint != cmd.fingerprint:
            raise IdempotencyMismatch(cmd.key)
        kind, rec = origin_record(b)
        return Decision(kind=kind, record=rec)
    i, j = _trip(state, cmd.from_, cmd.to, cmd.klass)
    n = len(cmd.passengers)
    if not cmd.waitlist and state.inv.known_short(cmd.klass, i, j, n):
        # late in a sale most requests land here: answer before the costlier checks
        raise SoldOut(state.route.route_id, cmd.klass, cmd.from_, cmd.to, n)
    if not 1 <= n <= MAX_PASSENGERS:
        raise InvalidRequest(f"A booking carries 1 to {MAX_PASSENGERS} passengers, not {n}.")
    ids = [p.id for p in cmd.passengers]
    if len(set(ids)) != n:
        raise InvalidRequest("Each passenger id may appear only once in a booking.")
    if cmd.seat_letters:
        letters = {c.letters for c in state.route.coaches if c.klass == cmd.klass}
        offered = set("".join(letters))
        unknown = [x for x in cmd.seat_letters if x not in offered]
        if unknown:
            raise InvalidRequest(
                f"Class {cmd.klass} has no seat letter(s) {', '.join(unknown)}; "
                f"it offers {''.join(sorted(offered))}."
            )
    if cmd.booking_id in state.bookings:
        raise InvalidRequest(f"Booking id {cmd.booking_id} is already taken.")
    _check_passengers(state, ids, trip_mask(i, j))
    live = state.live_seats.get(cmd.user, 0)
    if live + n > policy.user_cap:
        raise TooManyBookings(state.route.route_id, cmd.user, live, policy.user_cap)
    seats: list[int] | None
    if cmd.seats:
        seats = _picked(state, cmd, i, j)
    else:
        seats = state.inv.choose(cmd.klass, i, j, n, cmd.seat_letters, cmd.together)
    if seats is None:
        if not cmd.waitlist:
            raise SoldOut(state.route.route_id, cmd.klass, cmd.from_, cmd.to, n)
        w = Waitlisted(
            cmd.booking_id, cmd.user, cmd.key, cmd.fingerprint, i, j, cmd.klass,
            cmd.passengers, now, cmd.seat_letters, cmd.together,
        )  # fmt: skip
        return Decision([w], kind="waitlisted")
    held = Held(
        cmd.booking_id, cmd.user, cmd.key, cmd.fingerprint, i, j, cmd.klass, seats,
        cmd.passengers, now, now + policy.hold_seconds, cmd.seat_letters, cmd.together,
    )  # fmt: skip
    return Decision([held], kind="created")


def _change(state: RouteState, cmd: Change, now: float) -> Decision:
    b = _own(state, cmd.booking_id, cmd.user)
    if b.status not in ("held", "confirmed"):
        raise InvalidTransition(b.booking_id, b.status, "changed")
    i, j = _trip(state, cmd.from_, cmd.to, cmd.klass)
    if (i, j, cmd.klass) == (b.from_idx, b.to_idx, b.klass):
        return Decision(record=record(b))
    _check_passengers(state, [p.id for p in b.passengers], trip_mask(i, j), exclude=b.booking_id)
    inv = state.inv
    # look for the new seats as if the old ones were already free (a longer trip may keep
    # its seat); restore before returning: decide leaves the state as it found it
    inv.release(b.seats, b.from_idx, b.to_idx)
    try:
        seats = inv.choose(cmd.klass, i, j, len(b.passengers), b.letters, b.together)
    finally:
        inv.occupy(b.seats, b.from_idx, b.to_idx)
    if seats is None:
        raise SoldOut(state.route.route_id, cmd.klass, cmd.from_, cmd.to, len(b.passengers))
    return Decision([Changed(b.booking_id, i, j, cmd.klass, seats, now)], frees_seats=True)

"""The audit, as a pure function: each kind of failure is found, and clean histories pass."""

from __future__ import annotations

from typing import Literal

import msgspec
import pytest

from loadgen.audit import AuditResult, ServerState, allowed_statuses, audit
from loadgen.ledger import Action, BookAttempt, Ledger, Outcome
from loadgen.wire import Booking, BookingRequest, Coach, Passenger, RouteDef, Seat

Kind = Literal["confirm", "cancel"]
ACK = Outcome.ACKNOWLEDGED
RID = "L0001-20270101"
STATIONS = ("A", "B", "C", "D")
ROUTE = RouteDef(
    train="L0001",
    date="2027-01-01",
    stations=STATIONS,
    coaches=(
        Coach(number="01", klass="business", rows=1, letters="ACF"),
        Coach(number="02", klass="second", rows=2, letters="ABCDF"),
    ),
    route_id=RID,
)


class History:
    """Builds a ledger and the matching honest server listing, to be spoiled by each test."""

    def __init__(self) -> None:
        self.ledger = Ledger(routes={RID: ROUTE})
        self.listed: list[Booking] = []
        self._n = 0

    def request(self, seats: int = 1, origin: str = "A", destination: str = "D") -> BookingRequest:
        self._n += 1
        passengers = tuple(Passenger("P", f"{self._n:06d}{k:012d}") for k in range(seats))
        return BookingRequest(
            origin=origin, destination=destination, klass="second", passengers=passengers
        )

    def booked(
        self,
        seat_names: tuple[str, ...] = ("01A",),
        *,
        origin: str = "A",
        destination: str = "D",
        status: str = "held",
        listed_status: str | None = None,
        outcome: Outcome = Outcome.ACKNOWLEDGED,
        listed: bool = True,
    ) -> BookAttempt:
        """A booking loadgen sent, acknowledged with `seat_names`, listed as the server has it."""
        request = self.request(max(1, len(seat_names)), origin, destination)
        seats = tuple(Seat("02", name, k) for k, name in enumerate(seat_names))
        booking = Booking(
            booking_id=f"B{self._n}",
            route_id=RID,
            status=status,
            origin=origin,
            destination=destination,
            klass="second",
            seats=seats,
        )
        key = f"key-{self._n}"
        attempt = BookAttempt(
            key,
            RID,
            f"user-{self._n}",
            request,
            outcome,
            booking if outcome is Outcome.ACKNOWLEDGED else None,
        )
        self.ledger.attempts.append(attempt)
        if listed:
            self.listed.append(
                msgspec.structs.replace(
                    booking,
                    status=listed_status or status,
                    user=attempt.user,
                    passengers=request.passengers,
                )
            )
        return attempt

    def act(self, attempt: BookAttempt, kind: Kind, outcome: Outcome = ACK) -> None:
        assert attempt.booking is not None
        status = {"confirm": "confirmed", "cancel": "cancelled"}[kind]
        reply = msgspec.structs.replace(attempt.booking, status=status)
        acknowledged = outcome is Outcome.ACKNOWLEDGED
        action = Action(_id(attempt), kind, outcome, reply if acknowledged else None)
        self.ledger.actions.append(action)
        if acknowledged:  # an honest server shows what it acknowledged
            self.relist(_id(attempt), status=status)

    def relist(self, booking_id: str, **changes: object) -> None:
        self.listed = [
            msgspec.structs.replace(b, **changes) if b.booking_id == booking_id else b
            for b in self.listed
        ]

    def result(self, routes: dict[str, RouteDef | None] | None = None) -> AuditResult:
        return audit(self.ledger, ServerState(routes or {RID: ROUTE}, {RID: self.listed}))


def _id(attempt: BookAttempt) -> str:
    assert attempt.booking is not None
    return attempt.booking.booking_id


@pytest.fixture
def history() -> History:
    return History()


def _only(result: AuditResult, kind: str) -> None:
    counts = {k: getattr(result, k) for k in ("lost", "changed", "double_sold", "phantom")}
    counts |= {"duplicated": result.duplicated, "invalid": result.invalid}
    assert not result.ok
    assert counts[kind] > 0, result.details
    assert all(count == 0 for name, count in counts.items() if name != kind), counts
    assert any(line.startswith(f"{kind}:") for line in result.details)


def test_clean_history_with_every_lifecycle_passes(history: History) -> None:
    history.booked(("01A",))
    paid = history.booked(("01B", "01C"))
    history.act(paid, "confirm")
    dropped = history.booked(("01D",))
    history.act(dropped, "cancel")
    history.booked(("01D",))  # the cancelled seat, sold again
    history.booked(("01F",), listed_status="expired")
    history.booked(("02A",), origin="A", destination="B")
    history.booked(("02A",), origin="B", destination="D")  # same seat, later segments
    history.booked((), status="waitlisted")
    promoted = history.booked((), status="waitlisted")
    history.relist(_id(promoted), status="held", seats=(Seat("02", "02B", 0),))
    history.booked(("02C",), outcome=Outcome.INDETERMINATE)  # applied once: fine
    history.booked(("02D",), outcome=Outcome.INDETERMINATE, listed=False)  # never applied: fine
    history.booked(outcome=Outcome.REJECTED, listed=False)

    result = history.result()

    assert result.ok, result.details
    assert (result.checked, result.server_bookings) == (9, 10)
    assert (result.indeterminate, result.indeterminate_applied) == (2, 1)


def test_acknowledged_booking_missing_from_the_list_is_lost(history: History) -> None:
    history.booked(("01A",))
    history.booked(("01B",), listed=False)

    result = history.result()

    _only(result, "lost")
    assert result.lost == 1


def test_listed_with_other_seats_is_changed(history: History) -> None:
    attempt = history.booked(("01A",))
    history.relist(_id(attempt), seats=(Seat("02", "01B", 0),))

    _only(history.result(), "changed")


def test_cancelled_without_a_cancel_from_loadgen_is_changed(history: History) -> None:
    history.booked(("01A",), listed_status="cancelled")

    _only(history.result(), "changed")


def test_confirmed_booking_that_expired_is_changed(history: History) -> None:
    attempt = history.booked(("01A",))
    history.act(attempt, "confirm")
    history.relist(_id(attempt), status="expired")

    _only(history.result(), "changed")


def test_two_live_bookings_on_one_seat_segment_are_double_sold(history: History) -> None:
    history.booked(("01A",), origin="A", destination="C")
    history.booked(("01A",), origin="B", destination="D")

    result = history.result()

    _only(result, "double_sold")
    assert result.double_sold == 1


def test_a_cancelled_booking_does_not_count_as_double_sold(history: History) -> None:
    gone = history.booked(("01A",))
    history.act(gone, "cancel")
    history.booked(("01A",))

    assert history.result().ok


def test_booking_for_passengers_never_sent_is_phantom(history: History) -> None:
    history.booked(("01A",))
    stranger = Passenger("X", "999999999999999999")
    history.listed.append(
        Booking(
            booking_id="B-x",
            route_id=RID,
            status="held",
            origin="A",
            destination="D",
            klass="second",
            seats=(Seat("02", "02F", 0),),
            user="x",
            passengers=(stranger,),
        )
    )

    _only(history.result(), "phantom")


def test_rejected_request_that_was_applied_is_phantom(history: History) -> None:
    history.booked(("01A",), outcome=Outcome.REJECTED)

    _only(history.result(), "phantom")


def test_indeterminate_request_applied_twice_is_duplicated(history: History) -> None:
    attempt = history.booked(("01A",), outcome=Outcome.INDETERMINATE)
    twin = history.listed[-1]
    history.listed.append(
        msgspec.structs.replace(twin, booking_id="B-twin", seats=(Seat("02", "01B", 0),))
    )

    result = history.result()

    _only(result, "duplicated")
    assert result.indeterminate_applied == 1
    assert attempt.key in result.details[0]


def test_acknowledged_request_applied_again_is_duplicated(history: History) -> None:
    history.booked(("01A",))
    history.listed.append(
        msgspec.structs.replace(
            history.listed[-1], booking_id="B-again", seats=(Seat("02", "01B", 0),)
        )
    )

    _only(history.result(), "duplicated")


def test_seat_the_train_does_not_have_is_invalid(history: History) -> None:
    attempt = history.booked(("01A",))
    history.relist(_id(attempt), seats=(Seat("02", "09A", 0),))
    # the acknowledged seat was 01A: the listing is also "changed"; check the invalid count.
    result = history.result()

    assert result.invalid == 1 and not result.ok


def test_route_served_with_another_definition_is_invalid(history: History) -> None:
    history.booked(("01A",))
    other = msgspec.structs.replace(ROUTE, stations=("A", "B", "C", "E"))

    _only(history.result({RID: other}), "invalid")


@pytest.mark.parametrize(
    ("reply", "actions", "allowed"),
    [
        ("held", [], {"held", "expired"}),
        ("held", [("confirm", Outcome.ACKNOWLEDGED)], {"confirmed"}),
        ("held", [("confirm", Outcome.INDETERMINATE)], {"held", "expired", "confirmed"}),
        ("held", [("confirm", Outcome.REJECTED)], {"held", "expired"}),
        (
            "held",
            [("confirm", Outcome.ACKNOWLEDGED), ("cancel", Outcome.ACKNOWLEDGED)],
            {"cancelled"},
        ),
        ("held", [("cancel", Outcome.INDETERMINATE)], {"held", "expired", "cancelled"}),
        ("waitlisted", [], {"waitlisted", "held", "expired"}),
    ],
)
def test_allowed_statuses_follow_what_loadgen_did(
    history: History,
    reply: str,
    actions: list[tuple[Kind, Outcome]],
    allowed: set[str],
) -> None:
    attempt = history.booked(status=reply)
    for kind, outcome in actions:
        history.act(attempt, kind, outcome)

    assert allowed_statuses(attempt, history.ledger.actions) == allowed


def test_audit_that_could_not_read_the_server_fails() -> None:
    result = AuditResult.not_run("could not list", indeterminate=3)

    assert not result.ok and result.error == "could not list" and result.indeterminate == 3


def test_two_requests_acknowledged_as_one_booking_count_as_lost(history: History) -> None:
    first = history.booked(("01A",))
    second = history.booked(("01B",), listed=False)
    assert first.booking is not None and second.booking is not None
    history.ledger.attempts[-1] = BookAttempt(
        second.key,
        RID,
        second.user,
        second.request,
        ACK,
        msgspec.structs.replace(second.booking, booking_id=first.booking.booking_id),
    )

    result = history.result()

    _only(result, "lost")
    assert result.checked == 2

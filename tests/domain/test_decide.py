"""Booking rules: decide/execute for every command, each rejection, waitlist, sweep, change."""

from __future__ import annotations

import pytest
from support.domain import (
    POLICY,
    book,
    book_cmd,
    cancel,
    change,
    confirm,
    held_seats,
    make_state,
    preview_sweep,
    seat_names,
    status,
    sweep,
)

from actors.domain.decide import Policy, decide, execute, run_batch
from actors.domain.errors import (
    BadTrip,
    BookingNotFound,
    HoldExpired,
    IdempotencyMismatch,
    InvalidRequest,
    InvalidTransition,
    PassengerConflict,
    SoldOut,
    TooManyBookings,
    UnknownClass,
    UnknownStation,
)
from actors.domain.messages import (
    Book,
    Cancelled,
    Changed,
    Confirm,
    Confirmed,
    Expired,
    GetBooking,
    Held,
    ListBookings,
    Served,
    Waitlisted,
)
from actors.domain.state import RouteState

HOLD = POLICY.hold_seconds


def one_seat_state(stations: int = 4) -> RouteState:
    return make_state(stations, [("01", "second", 1, "A")])


# ---- booking -----------------------------------------------------------------------


def test_book_holds_seats_until_the_hold_deadline() -> None:
    state = make_state()

    d = book(state, 0, 2, n=2, now=100.0, booking_id="b1", user="alice")

    assert d.kind == "created"
    assert len(d.events) == 1
    held = d.events[0]
    assert isinstance(held, Held)
    assert (held.from_idx, held.to_idx, held.expires_at) == (0, 2, 100.0 + HOLD)
    assert d.record is not None
    assert (d.record.booking_id, d.record.status, d.record.hold_expires_at) == (
        "b1",
        "held",
        100.0 + HOLD,
    )
    assert d.record.seats == held.seats
    assert status(state, "b1") == "held"
    assert state.inv.available("second", 0, 2) == 2


def test_decide_alone_leaves_the_state_untouched() -> None:
    state = make_state()
    cmd = book_cmd(0, 3, n=2)

    decision = decide(state, cmd, POLICY, 0.0)

    assert decision.kind == "created"
    assert state.bookings == {}
    assert state.inv.available("second", 0, 3) == 4


@pytest.mark.parametrize(("from_", "to"), [("Nowhere", "S2"), ("S0", "Nowhere")])
def test_unknown_station_is_refused(from_: str, to: str) -> None:
    state = make_state()
    cmd = book_cmd(0, 1)
    cmd = Book(**{**{f: getattr(cmd, f) for f in cmd.__struct_fields__}, "from_": from_, "to": to})

    with pytest.raises(UnknownStation, match="does not stop at 'Nowhere'") as caught:
        execute(state, cmd, POLICY, 0.0)

    assert caught.value.type == "unknown-station"


@pytest.mark.parametrize(("i", "j"), [(2, 1), (2, 2)], ids=["reversed", "empty"])
def test_reversed_or_empty_trip_is_refused(i: int, j: int) -> None:
    state = make_state()

    with pytest.raises(BadTrip, match="empty or runs backwards") as caught:
        book(state, i, j)

    assert caught.value.type == "bad-trip"


def test_unknown_class_is_refused_naming_the_known_ones() -> None:
    state = make_state(coaches=[("01", "second", 1, "A"), ("02", "first", 1, "A")])

    with pytest.raises(UnknownClass, match="choose one of second, first"):
        book(state, 0, 1, klass="sleeper")


@pytest.mark.parametrize("n", [0, 6])
def test_passenger_count_outside_one_to_five_is_refused(n: int) -> None:
    state = make_state(coaches=[("01", "second", 3, "ABCD")])

    with pytest.raises(InvalidRequest, match=f"1 to 5 passengers, not {n}"):
        book(state, 0, 1, n=n)


def test_duplicate_passenger_ids_in_one_booking_are_refused() -> None:
    state = make_state()

    with pytest.raises(InvalidRequest, match="only once"):
        book(state, 0, 1, n=2, pids=["X1", "X1"])


def test_seat_letter_the_class_does_not_offer_is_refused() -> None:
    state = make_state(coaches=[("01", "second", 1, "AB"), ("02", "first", 1, "AF")])

    with pytest.raises(InvalidRequest, match="no seat letter") as caught:
        book(state, 0, 1, letters=["F"])  # F exists, but only in first class

    assert "offers AB" in str(caught.value)


def test_booking_id_already_taken_is_refused() -> None:
    state = make_state()
    book(state, 0, 1, booking_id="b1")

    with pytest.raises(InvalidRequest, match="already taken"):
        book(state, 1, 2, booking_id="b1")


def test_sold_out_is_refused_and_changes_nothing() -> None:
    state = one_seat_state()
    book(state, 0, 2)
    before = list(state.inv.bits)

    with pytest.raises(SoldOut) as caught:
        book(state, 1, 3)

    assert caught.value.type == "sold-out"
    assert caught.value.data == {
        "route_id": "T1-20261201",
        "class": "second",
        "from": "S1",
        "to": "S3",
        "wanted": 1,
    }
    assert "Fewer than 1 second seat(s)" in caught.value.detail
    assert state.inv.bits == before
    assert len(state.bookings) == 1


def test_group_that_exactly_fits_is_held_after_a_bigger_one_was_sold_out() -> None:
    state = make_state()  # 4 seats
    book(state, 0, 3, n=2)
    with pytest.raises(SoldOut):
        book(state, 0, 2, n=3)

    assert book(state, 0, 2, n=2).kind == "created"


def test_group_larger_than_the_free_seats_is_sold_out_even_if_some_are_free() -> None:
    state = make_state()  # 4 seats
    book(state, 0, 3, n=2)

    with pytest.raises(SoldOut):
        book(state, 0, 1, n=3)

    assert state.inv.available("second", 0, 1) == 2


def test_trip_that_does_not_overlap_a_sold_seat_can_reuse_it() -> None:
    state = one_seat_state()
    first = held_seats(state, 0, 2)

    assert held_seats(state, 2, 3) == first


# ---- real-name rule and per-user cap ----------------------------------------------


def test_passenger_cannot_hold_two_overlapping_trips() -> None:
    state = make_state()
    book(state, 0, 2, pids=["ID1"], booking_id="b1", user="alice")

    with pytest.raises(PassengerConflict, match="already holds booking b1") as caught:
        book(state, 1, 3, pids=["ID2", "ID1"], user="bob")  # by id, whoever books

    assert caught.value.data["passenger_id"] == "ID1"


def test_passenger_may_hold_non_overlapping_trips() -> None:
    state = make_state()
    book(state, 0, 2, pids=["ID1"])

    assert book(state, 2, 3, pids=["ID1"]).kind == "created"


def test_passenger_may_book_again_after_cancelling() -> None:
    state = make_state()
    book(state, 0, 2, pids=["ID1"], booking_id="b1")
    cancel(state, "b1")

    assert book(state, 0, 2, pids=["ID1"]).kind == "created"


def test_waitlisted_passenger_counts_as_travelling() -> None:
    state = one_seat_state()
    book(state, 0, 3)
    book(state, 0, 2, pids=["ID1"], waitlist=True)

    with pytest.raises(PassengerConflict):
        book(state, 1, 2, pids=["ID1"], waitlist=True)


def test_passenger_may_book_again_after_the_hold_expired() -> None:
    state = make_state()
    book(state, 0, 2, pids=["ID1"], booking_id="b1", now=0.0)
    sweep(state, now=HOLD)

    assert book(state, 0, 2, pids=["ID1"], now=HOLD).kind == "created"


def test_user_cannot_hold_more_passenger_seats_than_the_cap() -> None:
    state = make_state(coaches=[("01", "second", 3, "ABCD")])
    book(state, 0, 1, n=4, user="alice", booking_id="b1")

    with pytest.raises(TooManyBookings, match="already has 4 live passenger seat") as caught:
        book(state, 2, 3, n=2, user="alice")

    assert caught.value.data == {"route_id": "T1-20261201", "live": 4, "cap": 5}
    assert book(state, 2, 3, n=1, user="alice").kind == "created"
    assert book(state, 2, 3, n=2, user="bob").kind == "created"  # the cap is per user


def test_waitlisted_passengers_count_against_the_cap() -> None:
    state = make_state(coaches=[("01", "second", 1, "AB")])
    book(state, 0, 3, n=2, user="bob")
    assert book(state, 0, 3, n=4, user="alice", waitlist=True).kind == "waitlisted"

    with pytest.raises(TooManyBookings, match="already has 4 live passenger seat"):
        book(state, 0, 3, n=2, user="alice", waitlist=True)


def test_cancelled_bookings_no_longer_count_against_the_cap() -> None:
    state = make_state(coaches=[("01", "second", 3, "ABCD")])
    book(state, 0, 1, n=5, user="alice", booking_id="b1")
    with pytest.raises(TooManyBookings):
        book(state, 1, 2, user="alice")

    cancel(state, "b1", "alice")

    assert book(state, 1, 2, n=5, user="alice").kind == "created"


def test_policy_sets_the_cap() -> None:
    state = make_state()
    policy = Policy(user_cap=1)
    book(state, 0, 1, policy=policy)

    with pytest.raises(TooManyBookings):
        book(state, 1, 2, policy=policy)


# ---- idempotency -------------------------------------------------------------------


def test_repeat_with_same_key_and_fingerprint_returns_the_first_answer() -> None:
    state = make_state()
    cmd = book_cmd(0, 2, n=2, key="K1", fingerprint="f1")
    first = execute(state, cmd, POLICY, 0.0)

    again = execute(state, cmd, POLICY, 5.0)

    assert again.events == []
    assert (again.kind, again.record) == (first.kind, first.record)
    assert len(state.bookings) == 1


def test_repeat_returns_the_first_answer_even_after_confirm() -> None:
    state = make_state()
    cmd = book_cmd(0, 2, key="K1")
    first = execute(state, cmd, POLICY, 0.0)
    confirm(state, cmd.booking_id)

    again = execute(state, cmd, POLICY, 1.0)

    assert again.kind == "created"
    assert again.record == first.record
    assert again.record is not None and again.record.status == "held"
    assert status(state, cmd.booking_id) == "confirmed"


def test_repeat_of_a_waitlisted_request_still_answers_waitlisted_after_it_was_served() -> None:
    state = one_seat_state()
    blocker = book_cmd(0, 3)
    execute(state, blocker, POLICY, 0.0)
    cmd = book_cmd(0, 3, waitlist=True, key="K1", user="bob")
    first = execute(state, cmd, POLICY, 0.0)
    cancel(state, blocker.booking_id)
    assert status(state, cmd.booking_id) == "held"

    again = execute(state, cmd, POLICY, 1.0)

    assert (again.kind, again.record) == ("waitlisted", first.record)


def test_same_key_with_a_different_request_is_refused() -> None:
    state = make_state()
    book(state, 0, 2, key="K1", fingerprint="f1")

    with pytest.raises(IdempotencyMismatch, match="'K1' was already used") as caught:
        book(state, 0, 3, key="K1", fingerprint="f2")

    assert caught.value.type == "idempotency-mismatch"


def test_keys_are_scoped_per_user() -> None:
    state = make_state()
    book(state, 0, 2, key="K1", user="alice", fingerprint="f1")

    assert book(state, 0, 2, key="K1", user="bob", fingerprint="f2").kind == "created"
    assert len(state.bookings) == 2


# ---- confirm / cancel / get --------------------------------------------------------


def test_confirm_pays_a_held_booking_and_is_idempotent() -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1")

    d = confirm(state, "b1", now=10.0)
    again = confirm(state, "b1", now=11.0)

    assert d.events == [Confirmed("b1", 10.0)]
    assert d.record is not None and d.record.status == "confirmed"
    assert d.record.hold_expires_at is None
    assert again.events == []
    assert again.record == d.record


def test_confirm_one_millisecond_before_the_deadline_wins() -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1", now=0.0)

    confirm(state, "b1", now=HOLD - 0.001)
    sweep(state, now=HOLD + 1)

    assert status(state, "b1") == "confirmed"


@pytest.mark.parametrize("late", [0.0, 0.001, 60.0], ids=["at", "just-after", "long-after"])
def test_confirm_at_or_after_the_deadline_is_refused_as_expired(late: float) -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1", now=0.0)

    with pytest.raises(HoldExpired) as caught:
        confirm(state, "b1", now=HOLD + late)

    assert caught.value.type == "hold-expired"


def test_confirm_after_the_sweep_expired_the_hold_is_refused() -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1", now=0.0)
    sweep(state, now=HOLD)

    with pytest.raises(HoldExpired):
        confirm(state, "b1", now=HOLD)


def test_cancel_returns_the_seats_and_is_idempotent() -> None:
    state = make_state()
    book(state, 0, 2, n=2, booking_id="b1")

    d = cancel(state, "b1", now=3.0)
    again = cancel(state, "b1", now=4.0)

    assert d.events == [Cancelled("b1", 3.0)]
    assert d.frees_seats
    assert d.record is not None and d.record.status == "cancelled"
    assert again.events == []
    assert state.inv.bits == [0, 0, 0, 0]


def test_cancel_a_waitlisted_request_leaves_the_queue() -> None:
    state = one_seat_state()
    book(state, 0, 3)
    book(state, 0, 3, booking_id="w1", waitlist=True, user="bob")

    d = cancel(state, "w1", "bob")

    assert not d.frees_seats
    assert status(state, "w1") == "cancelled"
    assert list(state.waitlist) == []


@pytest.mark.parametrize(
    ("setup", "act", "message"),
    [
        ("cancel", "confirm", "is cancelled and cannot be confirmed"),
        ("waitlist", "confirm", "is waitlisted and cannot be confirmed"),
        ("expire", "cancel", "is expired and cannot be cancelled"),
        ("cancel", "change", "is cancelled and cannot be changed"),
        ("waitlist", "change", "is waitlisted and cannot be changed"),
        ("expire", "change", "is expired and cannot be changed"),
    ],
)
def test_transition_the_status_does_not_allow_is_refused(
    setup: str, act: str, message: str
) -> None:
    state = one_seat_state()
    if setup == "waitlist":
        book(state, 0, 3)
    book(state, 0, 2, booking_id="b1", waitlist=True, now=0.0)
    if setup == "cancel":
        cancel(state, "b1")
    elif setup == "expire":
        sweep(state, now=HOLD)

    with pytest.raises(InvalidTransition, match=message) as caught:
        if act == "confirm":
            confirm(state, "b1", now=HOLD)
        elif act == "cancel":
            cancel(state, "b1", now=HOLD)
        else:
            change(state, "b1", 1, 3, now=HOLD)

    assert caught.value.type == "invalid-state"


@pytest.mark.parametrize("act", ["confirm", "cancel", "change", "get"])
def test_another_users_booking_is_not_found(act: str) -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1", user="alice")

    with pytest.raises(BookingNotFound, match="no booking b1 for you") as caught:
        if act == "confirm":
            confirm(state, "b1", user="mallory")
        elif act == "cancel":
            cancel(state, "b1", user="mallory")
        elif act == "change":
            change(state, "b1", 0, 3, user="mallory")
        else:
            execute(state, GetBooking("b1", "mallory"), POLICY, 0.0)

    assert caught.value.type == "not-found"
    assert status(state, "b1") == "held"


def test_missing_booking_is_not_found() -> None:
    state = make_state()

    with pytest.raises(BookingNotFound):
        confirm(state, "nope")


def test_get_and_list_report_bookings_without_events() -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1", user="alice")
    book(state, 1, 3, booking_id="b2", user="bob")

    got = execute(state, GetBooking("b1", "alice"), POLICY, 0.0)
    listed = execute(state, ListBookings(), POLICY, 0.0)

    assert got.events == []
    assert got.record is not None and got.record.booking_id == "b1"
    assert listed.records is not None
    assert [r.booking_id for r in listed.records] == ["b1", "b2"]


# ---- waitlist ----------------------------------------------------------------------


def test_waitlist_request_that_fits_is_held_at_once() -> None:
    state = make_state()

    assert book(state, 0, 1, waitlist=True).kind == "created"


def test_waitlisted_request_is_served_with_a_fresh_hold_when_seats_free_up() -> None:
    state = one_seat_state()
    book(state, 0, 3, booking_id="b1", now=0.0)
    w = book(state, 1, 2, booking_id="w1", user="bob", waitlist=True, now=10.0)
    assert w.kind == "waitlisted"
    assert w.events[0] == Waitlisted(
        "w1", "bob", w.events[0].key, "fp", 1, 2, "second", w.events[0].passengers, 10.0, [], False
    )

    d = cancel(state, "b1", now=50.0)

    assert d.events[0] == Cancelled("b1", 50.0)
    assert d.events[1] == Served("w1", [0], 50.0, 50.0 + HOLD)
    booking = state.bookings["w1"]
    assert (booking.status, booking.seats, booking.hold_expires_at) == ("held", [0], 50.0 + HOLD)
    assert d.record is not None and d.record.booking_id == "b1"  # answer is about b1


def test_waitlist_is_served_in_arrival_order() -> None:
    state = one_seat_state()
    book(state, 0, 3, booking_id="b1")
    book(state, 0, 3, booking_id="w1", user="u1", waitlist=True)
    book(state, 0, 3, booking_id="w2", user="u2", waitlist=True)

    cancel(state, "b1")

    assert (status(state, "w1"), status(state, "w2")) == ("held", "waitlisted")
    assert list(state.waitlist) == ["w2"]
    cancel(state, "w1", "u1")
    assert status(state, "w2") == "held"


def test_big_group_at_the_head_does_not_block_a_smaller_one_that_fits() -> None:
    state = make_state()  # 4 seats
    book(state, 0, 3, n=2, booking_id="p1", user="a")
    book(state, 0, 3, n=2, booking_id="p2", user="b")
    book(state, 0, 3, n=3, booking_id="w3", user="c", waitlist=True)
    book(state, 0, 3, n=2, booking_id="w2", user="d", waitlist=True)
    book(state, 0, 3, n=1, booking_id="w1", user="e", waitlist=True)

    cancel(state, "p1", "a")  # 2 free: the 3 wait, the pair behind them is served
    assert [status(state, b) for b in ("w3", "w2", "w1")] == ["waitlisted", "held", "waitlisted"]

    cancel(state, "p2", "b")  # 2 free: still too few for the 3, the single is served
    assert [status(state, b) for b in ("w3", "w2", "w1")] == ["waitlisted", "held", "held"]
    assert list(state.waitlist) == ["w3"]

    cancel(state, "w2", "d")  # 3 free: the head is served at last
    assert status(state, "w3") == "held"
    assert list(state.waitlist) == []


def test_served_groups_leave_a_too_big_head_waiting() -> None:
    state = make_state()  # 4 seats
    book(state, 0, 3, n=2, booking_id="p1", user="a")
    book(state, 0, 3, n=2, booking_id="p2", user="b")
    book(state, 0, 3, n=3, booking_id="w3", user="c", waitlist=True)
    book(state, 0, 3, n=1, booking_id="w1", user="d", waitlist=True)
    book(state, 0, 3, n=2, booking_id="w2", user="e", waitlist=True)

    d = cancel(state, "p1", "a")

    assert [type(e).__name__ for e in d.events] == ["Cancelled", "Served"]
    assert [status(state, b) for b in ("w3", "w1", "w2")] == ["waitlisted", "held", "waitlisted"]
    assert list(state.waitlist) == ["w3", "w2"]


def test_waitlisted_group_keeps_its_together_request_when_served() -> None:
    state = make_state(3, [("01", "second", 2, "AB")])
    book(state, 0, 2, n=1, booking_id="a", user="a", pids=["A"])
    book(state, 0, 2, n=1, booking_id="b", user="b", pids=["B"])
    book(state, 0, 2, n=2, booking_id="c", user="c")
    book(state, 0, 2, n=2, booking_id="w", user="w", waitlist=True, together=True)

    cancel(state, "a", "a")
    cancel(state, "c", "c")

    seats = seat_names(state.inv, state.bookings["w"].seats)
    assert status(state, "w") == "held"
    assert seats[0][:5] == seats[1][:5]  # same coach and row


# ---- sweep -------------------------------------------------------------------------


def test_sweep_expires_due_holds_and_frees_their_seats() -> None:
    state = make_state()
    book(state, 0, 2, n=2, booking_id="early", now=0.0)
    book(state, 0, 2, n=1, booking_id="late", now=30.0)
    book(state, 0, 2, n=1, booking_id="paid", now=0.0)
    confirm(state, "paid", now=1.0)

    d = sweep(state, now=HOLD + 10.0)

    assert d.events == [Expired("early", HOLD + 10.0)]
    assert [status(state, b) for b in ("early", "late", "paid")] == ["expired", "held", "confirmed"]
    assert state.inv.available("second", 0, 2) == 2


def test_sweep_before_any_deadline_does_nothing() -> None:
    state = make_state()
    book(state, 0, 2, booking_id="b1", now=0.0)

    d = sweep(state, now=HOLD - 0.001)

    assert d.events == []
    assert not d.frees_seats
    assert status(state, "b1") == "held"


def test_sweep_skips_holds_already_cancelled_or_served_again() -> None:
    state = one_seat_state()
    book(state, 0, 3, booking_id="b1", now=0.0)
    book(state, 0, 3, booking_id="w1", user="bob", waitlist=True, now=0.0)
    cancel(state, "b1", now=100.0)  # w1 served with a hold until 100 + HOLD

    d = sweep(state, now=HOLD)

    assert d.events == []
    assert status(state, "w1") == "held"
    assert sweep(state, now=100.0 + HOLD).events == [Expired("w1", 100.0 + HOLD)]


def test_sweep_serves_the_waitlist_with_the_expired_seats() -> None:
    state = one_seat_state()
    book(state, 0, 3, booking_id="b1", now=0.0)
    book(state, 1, 2, booking_id="w1", user="bob", waitlist=True, now=1.0)

    d = sweep(state, now=HOLD)

    assert [type(e) for e in d.events] == [Expired, Served]
    assert status(state, "w1") == "held"


def test_deciding_a_sweep_without_applying_it_loses_no_due_hold() -> None:
    # the actor may decide and then fail to persist: the hold must still expire later
    state = make_state()
    book(state, 0, 2, booking_id="b1", now=0.0)
    book(state, 1, 3, booking_id="b2", now=5.0)

    first = preview_sweep(state, now=HOLD + 5.0)
    second = preview_sweep(state, now=HOLD + 5.0)

    assert first.events == [Expired("b1", HOLD + 5.0), Expired("b2", HOLD + 5.0)]
    assert second.events == first.events
    assert sweep(state, now=HOLD + 5.0).events == first.events


def test_sweep_expires_in_deadline_order() -> None:
    state = make_state(coaches=[("01", "second", 3, "AB")])
    for k, at in enumerate([5.0, 1.0, 3.0, 4.0, 2.0, 0.0]):
        book(state, 0, 1, booking_id=f"b{k}", user=f"u{k}", now=at)

    d = sweep(state, now=HOLD + 4.5)

    assert [e.booking_id for e in d.events] == ["b5", "b1", "b4", "b2", "b3"]


# ---- change ------------------------------------------------------------------------


def test_change_moves_the_booking_to_the_new_trip() -> None:
    state = make_state(coaches=[("01", "second", 1, "AB"), ("02", "first", 1, "AF")])
    book(state, 0, 1, booking_id="b1", now=0.0)

    d = change(state, "b1", 2, 3, klass="first", now=7.0)

    assert len(d.events) == 1
    changed = d.events[0]
    assert isinstance(changed, Changed)
    assert (changed.from_idx, changed.to_idx, changed.klass, changed.at) == (2, 3, "first", 7.0)
    b = state.bookings["b1"]
    assert (b.from_idx, b.to_idx, b.klass, b.status) == (2, 3, "first", "held")
    assert state.inv.available("second", 0, 1) == 2
    assert state.inv.available("first", 2, 3) == 1
    assert d.record is not None and d.record.klass == "first"


def test_change_keeps_confirmed_status_and_hold_deadline() -> None:
    state = make_state()
    book(state, 0, 1, booking_id="b1", now=0.0)
    confirm(state, "b1")
    book(state, 0, 1, booking_id="b2", now=0.0)

    change(state, "b1", 1, 2, now=5.0)
    change(state, "b2", 1, 2, now=5.0)

    assert status(state, "b1") == "confirmed"
    assert state.bookings["b2"].hold_expires_at == HOLD


def test_change_to_a_sold_out_trip_leaves_the_original_intact() -> None:
    state = make_state(coaches=[("01", "second", 1, "AB")])
    seats = held_seats(state, 0, 1, booking_id="b1")
    book(state, 2, 3, n=2, user="bob")
    bits = list(state.inv.bits)

    with pytest.raises(SoldOut):
        change(state, "b1", 1, 3)

    b = state.bookings["b1"]
    assert (b.from_idx, b.to_idx, b.seats, b.status) == (0, 1, seats, "held")
    assert state.inv.bits == bits


def test_change_to_a_longer_trip_can_reuse_its_own_seat() -> None:
    state = one_seat_state()
    seats = held_seats(state, 1, 2, booking_id="b1")

    change(state, "b1", 0, 3)

    assert state.bookings["b1"].seats == seats
    assert state.inv.bits[seats[0]] == 0b111


def test_change_to_the_same_trip_is_a_no_op() -> None:
    state = make_state()
    book(state, 0, 1, booking_id="b1")

    d = change(state, "b1", 0, 1)

    assert d.events == []
    assert d.record is not None and d.record.booking_id == "b1"


def test_change_onto_a_trip_the_passenger_already_travels_is_refused() -> None:
    state = make_state()
    book(state, 0, 1, pids=["ID1"], booking_id="b1")
    book(state, 2, 3, pids=["ID1"], booking_id="b2")

    with pytest.raises(PassengerConflict, match="booking b2"):
        change(state, "b1", 0, 3)


def test_change_frees_seats_for_the_waitlist() -> None:
    state = one_seat_state()
    book(state, 0, 3, booking_id="b1")
    book(state, 0, 1, booking_id="w1", user="bob", waitlist=True)

    d = change(state, "b1", 1, 3)

    assert [type(e) for e in d.events] == [Changed, Served]
    assert status(state, "w1") == "held"


# ---- batches -----------------------------------------------------------------------


def test_batch_answers_each_command_and_later_commands_see_earlier_events() -> None:
    state = one_seat_state()
    a = book_cmd(0, 3, booking_id="a", user="alice")
    b = book_cmd(0, 3, booking_id="b", user="bob")
    c = Confirm("a", "alice")

    events, results = run_batch(state, [a, b, c], POLICY, 0.0)

    assert [type(e) for e in events] == [Held, Confirmed]
    assert [r.ok for r in results] == [True, False, True]
    assert results[0].kind == "created"
    assert results[1].error is not None and results[1].error["type"] == "sold-out"
    assert results[1].error["wanted"] == 1
    assert results[2].record is not None and results[2].record.status == "confirmed"

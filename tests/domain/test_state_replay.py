"""apply(), the journal encoding and snapshots: a replayed or restored state is the same state."""

from __future__ import annotations

import msgspec
import pytest
from support.domain import (
    POLICY,
    assert_same_state,
    book,
    book_cmd,
    cancel,
    change,
    confirm,
    live_holds,
    make_state,
    status,
    sweep,
)

from actors.domain.decide import execute, run_batch
from actors.domain.errors import IdempotencyMismatch
from actors.domain.inventory import InventoryCorrupt
from actors.domain.messages import (
    Cancel,
    Event,
    Held,
    Passenger,
    Sweep,
    decode_commands,
    decode_events,
    encode,
)
from actors.domain.route import RouteDef
from actors.domain.state import RouteState, apply, from_snapshot, to_snapshot

HOLD = POLICY.hold_seconds
COACHES = [("01", "second", 2, "AB"), ("02", "first", 1, "AF")]


def busy_day() -> tuple[RouteState, list[Event]]:
    """A state that went through every kind of event, and its journal."""
    state = make_state(5, COACHES)
    journal: list[Event] = []

    def run(decision_events: list[Event]) -> None:
        journal.extend(decision_events)

    run(book(state, 0, 4, n=2, booking_id="a", user="alice", now=0.0).events)
    run(book(state, 1, 3, n=2, booking_id="b", user="bob", now=1.0, together=True).events)
    run(book(state, 0, 2, n=1, booking_id="w", user="wu", waitlist=True, now=2.0).events)
    run(book(state, 2, 4, n=1, booking_id="c", user="cy", now=3.0, klass="first").events)
    run(confirm(state, "c", "cy", now=4.0).events)
    run(change(state, "c", 1, 4, klass="first", user="cy", now=5.0).events)
    run(cancel(state, "b", "bob", now=6.0).events)  # serves w
    run(book(state, 3, 4, n=1, booking_id="d", user="dee", now=7.0, letters=["B"]).events)
    run(sweep(state, now=HOLD + 1.5).events)  # expires a; b is gone, w and d are not due yet
    run(book(state, 0, 1, n=1, booking_id="e", user="eve", now=HOLD + 2.0).events)
    assert [status(state, x) for x in "abwcde"] == [
        "expired",
        "cancelled",
        "held",
        "confirmed",
        "held",
        "held",
    ]
    return state, journal


def replay(route: RouteDef, blob: bytes) -> RouteState:
    state = RouteState.empty(route)
    for event in decode_events(blob):
        apply(state, event)
    return state


def test_replaying_the_journal_rebuilds_the_same_state() -> None:
    state, journal = busy_day()

    replayed = replay(state.route, encode(journal))

    assert_same_state(replayed, state)
    assert replayed.events_applied == len(journal) == state.events_applied


def test_replay_batch_by_batch_equals_replay_in_one_piece() -> None:
    state, journal = busy_day()
    replayed = RouteState.empty(state.route)

    for k in range(0, len(journal), 3):
        for event in decode_events(encode(journal[k : k + 3])):
            apply(replayed, event)

    assert_same_state(replayed, state)


def test_snapshot_round_trip_gives_the_same_state() -> None:
    state, _ = busy_day()

    restored = from_snapshot(to_snapshot(state))

    assert_same_state(restored, state)


def test_snapshot_keeps_the_waitlist_in_arrival_order() -> None:
    state = make_state(3, [("01", "second", 1, "A")])
    book(state, 0, 2, booking_id="a", user="a")
    for bid in ["w9", "w10", "w1"]:  # arrival order is neither sorted nor reversed
        book(state, 0, 2, booking_id=bid, user=bid, waitlist=True)

    restored = from_snapshot(to_snapshot(state))
    cancel(restored, "a", "a")

    assert list(restored.waitlist) == ["w10", "w1"]
    assert status(restored, "w9") == "held"


def test_snapshot_of_an_empty_route_is_an_empty_route() -> None:
    state = make_state(5, COACHES)

    assert_same_state(from_snapshot(to_snapshot(state)), state)


def test_events_after_a_snapshot_apply_to_the_restored_state() -> None:
    state = make_state(5, COACHES)
    journal: list[Event] = []
    journal += book(state, 0, 4, n=2, booking_id="a", user="alice", now=0.0).events
    journal += book(state, 0, 2, n=3, booking_id="w", user="wu", waitlist=True).events
    snapshot = to_snapshot(state)
    tail: list[Event] = []
    tail += cancel(state, "a", "alice", now=10.0).events  # serves w
    tail += confirm(state, "w", "wu", now=11.0).events
    tail += book(state, 2, 3, booking_id="b", user="bob", now=12.0).events

    restored = from_snapshot(snapshot)
    for event in decode_events(encode(tail)):
        apply(restored, event)

    assert_same_state(restored, state)
    assert status(restored, "w") == "confirmed"


def test_restored_state_decides_like_the_original() -> None:
    state, _ = busy_day()
    restored = from_snapshot(to_snapshot(state))
    later = HOLD * 3

    # the held bookings expire on both, in the same order, and nothing else does
    assert sweep(restored, later).events == sweep(state, later).events
    cmd = book_cmd(0, 4, n=2, user="x")
    assert execute(restored, cmd, POLICY, later).events == execute(state, cmd, POLICY, later).events
    assert_same_state(restored, state)


def test_snapshot_keeps_only_live_holds() -> None:
    state, _ = busy_day()

    restored = from_snapshot(to_snapshot(state))

    assert sorted(restored.holds) == sorted(live_holds(state))
    assert {bid for _, bid in restored.holds} == {"w", "d", "e"}


def test_idempotency_survives_replay_and_snapshot() -> None:
    state = make_state()
    cmd = book_cmd(0, 2, key="K1", fingerprint="f1")
    first = execute(state, cmd, POLICY, 0.0)
    confirm(state, cmd.booking_id)
    restored = from_snapshot(to_snapshot(state))

    again = execute(restored, cmd, POLICY, 1.0)

    assert (again.kind, again.record, again.events) == (first.kind, first.record, [])
    with pytest.raises(IdempotencyMismatch):
        book(restored, 0, 3, key="K1", fingerprint="f2")


def test_apply_refuses_an_event_that_double_sells_a_seat() -> None:
    state = make_state()
    held = book(state, 0, 2, booking_id="a").events[0]
    assert isinstance(held, Held)
    clash = Held(
        "z", "u", "k", "f", 1, 3, "second", held.seats, [Passenger("Z", "Z")], 0.0, 1.0, [], False
    )

    with pytest.raises(InventoryCorrupt):
        apply(state, clash)


def test_corrupt_journal_fails_to_decode() -> None:
    _, journal = busy_day()
    blob = encode(journal)

    with pytest.raises(msgspec.DecodeError):
        decode_events(blob[:-3])
    with pytest.raises(msgspec.ValidationError):
        decode_events(encode([["held", "only-an-id"]]))


def test_commands_round_trip_through_msgpack() -> None:
    commands = [book_cmd(0, 2, n=2, letters=["A"], together=True, waitlist=True), Cancel("b", "u")]
    commands.append(Sweep())  # type: ignore[arg-type]

    assert decode_commands(encode(commands)) == commands


def test_batch_events_replay_to_the_batch_state() -> None:
    state = make_state()
    commands = [book_cmd(0, 3, n=2, booking_id="a"), book_cmd(0, 3, n=3), Cancel("a", "alice")]

    events, results = run_batch(state, commands, POLICY, 0.0)

    assert [r.ok for r in results] == [True, False, True]
    assert_same_state(replay(state.route, encode(events)), state)

"""The actor's seat-map read and picked seats, in the pure domain (no Ray, no Redis)."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest
from support.domain import book, book_cmd, confirm, execute, make_state, seat_at

from actors.domain.decide import Policy
from actors.domain.errors import InvalidRequest, SeatTaken
from actors.domain.views import SeatMap
from actors.seat_reads import SeatReads

POLICY = Policy(hold_seconds=600, user_cap=5)


@dataclasses.dataclass
class Peer:
    """Stands in for a plane connection: keeps what it was answered."""

    answers: list[bytes] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)

    def answer(self, req_id: int, body: bytes) -> None:
        self.answers.append(body)

    def fail(self, req_id: int, detail: str) -> None:
        self.failures.append(detail)


def test_a_picked_seat_is_held_and_then_refused_to_an_overlapping_trip() -> None:
    state = make_state(stations=4)
    seat = seat_at(state.inv, "01", "01A")
    d = execute(state, msgspec.structs.replace(book_cmd(0, 2), seats=[seat]), POLICY, 0.0)
    assert d.kind == "created" and d.record is not None and d.record.seats == [seat]
    later = execute(
        state, msgspec.structs.replace(book_cmd(2, 3, user="bob"), seats=[seat]), POLICY, 0.0
    )
    assert later.kind == "created"  # free after station 2
    with pytest.raises(SeatTaken, match="01-01A"):
        execute(
            state, msgspec.structs.replace(book_cmd(1, 3, user="carol"), seats=[seat]), POLICY, 0.0
        )


def test_picks_must_be_one_per_passenger_and_never_with_the_waitlist() -> None:
    state = make_state(stations=4)
    seat = seat_at(state.inv, "01", "01A")
    for cmd in (
        msgspec.structs.replace(book_cmd(0, 1, n=2), seats=[seat]),
        msgspec.structs.replace(book_cmd(0, 1, n=2), seats=[seat, seat]),
        msgspec.structs.replace(book_cmd(0, 1, waitlist=True), seats=[seat]),
        msgspec.structs.replace(book_cmd(0, 1), seats=[10_000]),
    ):
        with pytest.raises(InvalidRequest):
            execute(state, cmd, POLICY, 0.0)


def test_the_seat_map_counts_held_paid_and_waiting() -> None:
    state = make_state(stations=4)
    held = book(state, 0, 3, n=2)
    paid = book(state, 0, 1, user="bob", pids=["q1"])
    assert held.record is not None and paid.record is not None
    confirm(state, paid.record.booking_id, user="bob")
    reads, peer = SeatReads(), Peer()
    reads.ask(peer, 1)  # type: ignore[arg-type]
    reads.answer(state, 7, stale=False)
    got = msgspec.msgpack.decode(peer.answers[0], type=SeatMap)
    assert (got.version, got.held, got.sold, got.waitlisted) == (7, 2, 1, 0)
    assert [bits for bits in got.bits if bits] == [0b111, 0b111, 0b001]


def test_readers_wait_for_a_durable_moment_and_retry_a_reload() -> None:
    state = make_state(stations=4)
    reads, peer = SeatReads(), Peer()
    reads.answer(state, 1, stale=False)  # nobody waiting: nothing sent
    assert peer.answers == []
    reads.ask(peer, 1)  # type: ignore[arg-type]
    reads.answer(state, 1, stale=True)
    assert peer.failures and not peer.answers
    reads.ask(peer, 2)  # type: ignore[arg-type]
    reads.ask(peer, 3)  # type: ignore[arg-type]
    reads.answer(state, 2, stale=False)
    assert len(peer.answers) == 2 and peer.answers[0] is peer.answers[1]  # encoded once

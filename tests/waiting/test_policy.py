"""How far admission reaches, and what a poll answers."""

from __future__ import annotations

import pytest

from server.waiting import policy
from server.waiting.policy import Automatic, FixedRate, Step, advance, view


def test_a_fixed_rate_admits_whole_users_and_carries_the_fraction() -> None:
    step = advance(FixedRate(2.5), 0, 100, elapsed=1.0, seats_left=10, unbooked=0)
    assert step == Step(2, 0.5)
    step = advance(FixedRate(2.5), step.frontier, 100, elapsed=1.0, carry=step.carry,
                   seats_left=10, unbooked=0)  # fmt: skip
    assert step == Step(5, 0.0)


def test_admission_stops_at_the_queue_end_and_when_no_seat_is_left() -> None:
    assert advance(FixedRate(100), 8, 10, elapsed=1, seats_left=5, unbooked=0) == Step(10, 0)
    assert advance(FixedRate(100), 3, 10, elapsed=1, seats_left=0, unbooked=0) == Step(3, 0)
    assert advance(Automatic(), 3, 10, elapsed=1, seats_left=0, unbooked=0) == Step(3, 0)


def test_automatic_admission_keeps_those_admitted_unbooked_under_seats_times_factor() -> None:
    # 10 seats x 1.5: 15 may be admitted and not yet booked
    assert advance(Automatic(1.5), 0, 1000, elapsed=1, seats_left=10, unbooked=0).frontier == 15
    assert advance(Automatic(1.5), 15, 1000, elapsed=1, seats_left=10, unbooked=15).frontier == 15
    # 5 of them booked (5 seats left, 10 still unbooked): 8 - 10 -> nobody more
    assert advance(Automatic(1.5), 15, 1000, elapsed=1, seats_left=5, unbooked=10).frontier == 15
    # they all booked or expired: 8 more
    assert advance(Automatic(1.5), 15, 1000, elapsed=1, seats_left=5, unbooked=0).frontier == 23


def test_a_poll_before_the_opening_is_in_the_pre_queue() -> None:
    got = view(policy.SCHEDULED, None, 0, 0.0)
    assert (got.state, got.place, got.ahead) == (policy.NOT_OPEN, None, None)


def test_a_waiting_caller_hears_people_ahead_the_wait_and_when_to_ask_again() -> None:
    got = view(policy.OPEN, 120, 20, 10.0)
    assert (got.state, got.ahead, got.eta_seconds) == (policy.WAITING, 99, 10.0)
    assert got.poll_after_seconds == 2.5
    far = view(policy.OPEN, 100_000, 20, 10.0)
    assert far.poll_after_seconds == policy.POLL_MAX
    near = view(policy.OPEN, 21, 20, 10.0)
    assert near.poll_after_seconds == policy.POLL_MIN


def test_a_paused_sale_gives_no_estimate() -> None:
    got = view(policy.PAUSED, 50, 20, 0.0)
    assert (got.state, got.ahead, got.eta_seconds) == (policy.WAITING, 29, None)


@pytest.mark.parametrize("state", [policy.SOLD_OUT, policy.CLOSED])
def test_everybody_still_waiting_hears_the_end_at_once(state: str) -> None:
    assert view(state, 500, 20, 10.0).state == state


def test_a_place_the_frontier_reached_is_admitted() -> None:
    assert view(policy.OPEN, 20, 20, 10.0).state == policy.ADMITTED
    assert view(policy.PAUSED, 3, 20, 0.0).state == policy.ADMITTED

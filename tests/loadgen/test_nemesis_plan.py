"""The nemesis's schedule and its verdict: pure functions, no server."""

from __future__ import annotations

import itertools

import pytest

from loadgen.nemesis.schedule import BOUNDS, KINDS, PAUSES, plan
from loadgen.nemesis.verdict import Done, Seen, judge


def test_a_seed_replays_the_same_schedule_and_another_seed_does_not() -> None:
    assert plan(42, 600, 46) == plan(42, 600, 46)
    assert plan(42, 600, 46) != plan(43, 600, 46)


def test_a_schedule_has_every_kind_in_turn_inside_the_quiet_margins() -> None:
    faults = plan(5, 600, 46)
    assert len(faults) == 46
    counts = {k: sum(f.kind == k for f in faults) for k in KINDS}
    assert min(counts.values()) >= 46 // len(KINDS), counts  # each kind about equally often
    assert all(f.at >= 5.0 and f.ends <= 600 - 5.0 for f in faults)
    assert [f.at for f in faults] == sorted(f.at for f in faults)
    for f in faults:
        lo, hi = PAUSES.get(f.kind, (0.0, 0.0))
        assert lo <= f.pause <= hi
    # some start while the one before is still on: faults overlap
    assert any(b.at - a.at < 1.5 for a, b in itertools.pairwise(faults))


def test_a_schedule_can_be_narrowed_to_some_kinds_and_refuses_unknown_ones() -> None:
    assert {f.kind for f in plan(1, 100, 10, ("redis-kill", "fe-pause"))} == {
        "redis-kill",
        "fe-pause",
    }
    with pytest.raises(ValueError, match="unknown fault kinds"):
        plan(1, 100, 10, ("redis-explode",))
    with pytest.raises(ValueError, match="leaves no time"):
        plan(1, 15, 3)


def _book(route: str, sent: float, done: float, status: int, **kw: object) -> Seen:
    return Seen("book", route, sent, done, status, **kw)  # type: ignore[arg-type]


def test_a_request_never_answered_is_silence_and_fails_the_run() -> None:
    seen = [_book("R1", 1.0, 11.0, 0, failure="timeout"), _book("R1", 1.0, 1.1, 201)]
    v = judge(seen, [], ["R1"], 20.0)
    assert not v.ok and v.silent == 1 and "no answer" in v.failures[0]


def test_a_cut_connection_is_allowed_only_just_after_a_worker_was_killed() -> None:
    kill = Done(n=1, kind="fe-kill", target="w", started=5.0, ended=5.0)
    seen = [
        _book("R1", 4.9, 5.2, 0, failure="disconnected"),  # its worker died: allowed
        _book("R1", 9.0, 9.0, 0, failure="connect-error"),  # no fault explains it
        _book("R1", 5.3, 5.4, 201),
    ]
    v = judge(seen, [kill], ["R1"], 20.0)
    assert (v.cut, v.unexplained_cuts) == (1, 1) and not v.ok


def test_a_503_must_say_when_to_retry_and_no_other_5xx_is_allowed() -> None:
    seen = [
        _book("R1", 1.0, 1.1, 503, retry_after=True),
        _book("R1", 1.0, 1.1, 503),
        _book("R1", 1.0, 1.1, 500),
    ]
    assert judge(seen, [], ["R1"], 20.0).bad_answers == 2


def test_recovery_is_the_last_routes_first_ack_after_the_fault_within_its_bound() -> None:
    kill = Done(n=1, kind="redis-kill", target="redis", started=10.0, ended=10.0)
    seen = [
        _book("R1", 10.1, 10.5, 503, retry_after=True),
        _book("R1", 10.6, 11.0, 201),
        _book("R2", 9.0, 10.2, 201),  # sent before the fault: proves nothing
        _book("R2", 11.0, 12.5, 202),
    ]
    v = judge(seen, [kill], ["R1", "R2"], 60.0)
    (r,) = v.recoveries
    assert (r.seconds, r.slowest_route, r.ok) == (2.5, "R2", True)
    late = [*seen[:3], _book("R2", 11.0, 10.0 + BOUNDS["redis-kill"] + 1, 201)]
    (r,) = judge(late, [kill], ["R1", "R2"], 60.0).recoveries
    assert not r.ok


def test_a_frozen_node_counts_from_the_freeze_and_an_overlapping_fault_stretches_it() -> None:
    freeze = Done(n=1, kind="node-pause", target="n", started=10.0, ended=17.0)
    seen = [_book("R1", 11.0, 10.0 + BOUNDS["node-pause"] - 1, 201)]
    (r,) = judge(seen, [freeze], ["R1"], 60.0).recoveries
    assert r.counted_from == "start" and r.ok
    # a Redis pause that began before the route came back holds it up too
    pause = Done(n=2, kind="redis-pause", target="r", started=20.0, ended=23.0)
    seen = [_book("R1", 12.0, 27.0, 201), _book("R1", 24.0, 27.0, 201)]
    first, second = judge(seen, [freeze, pause], ["R1"], 60.0).recoveries
    assert first.allowed == 23.0 + BOUNDS["redis-pause"] - 10.0 and first.ok and second.ok


def test_a_fault_held_up_by_an_earlier_one_still_unhealed_gets_that_ones_deadline() -> None:
    # a node frozen at 10 s (its routes move within 15 s), then a front-end worker paused
    # 11-12 s: the routes come back at 20 s, late for the pause's 3 s but not for the node
    freeze = Done(n=1, kind="node-pause", target="n", started=10.0, ended=17.0)
    pause = Done(n=2, kind="fe-pause", target="w", started=11.0, ended=12.0)
    seen = [_book("R1", 12.5, 20.0, 201)]
    first, second = judge(seen, [freeze, pause], ["R1"], 60.0).recoveries
    assert first.ok and second.ok and second.allowed == 10.0 + BOUNDS["node-pause"] - 12.0
    # alone, the same slow answer after a pause fails it
    (alone,) = judge(seen, [pause], ["R1"], 60.0).recoveries
    assert not alone.ok

"""The queue's order: the pre-queue drawn uniformly at the opening, later joiners first
come first served, one place per user."""

from __future__ import annotations

import random
from collections import Counter

from server.waiting.order import Queue, opening_order


def _spearman(xs: list[int], ys: list[int]) -> float:
    n = len(xs)
    d2 = sum((x - y) ** 2 for x, y in zip(xs, ys, strict=True))
    return 1 - 6 * d2 / (n * (n * n - 1))


def test_joining_again_keeps_ones_place_before_and_after_the_opening() -> None:
    q = Queue()
    assert q.join("early") is None and q.join("early") is None  # the pre-queue
    q.open(random.Random(1))
    assert q.place("early") == 1
    assert q.join("early") == 1
    assert q.join("late") == 2 and q.join("late") == 2
    assert len(q) == 2


def test_later_joiners_follow_the_whole_pre_queue_in_arrival_order() -> None:
    q = Queue()
    for n in range(100):
        q.join(f"pre{n}")
    q.open(random.Random(7))
    assert sorted(q.place(f"pre{n}") or 0 for n in range(100)) == list(range(1, 101))
    assert [q.join(f"post{n}") for n in range(50)] == list(range(101, 151))


def test_a_second_opening_draws_nothing_again() -> None:
    q = Queue()
    for n in range(20):
        q.join(f"u{n}")
    q.open(random.Random(3))
    before = [q.place(f"u{n}") for n in range(20)]
    q.open(random.Random(4))
    assert [q.place(f"u{n}") for n in range(20)] == before


def test_the_opening_order_is_uncorrelated_with_the_join_order() -> None:
    # the loadgen audit's measure: Spearman's rho between join order and place, |rho| <=
    # 0.05 with 5,000 pre-opening joiners
    q = Queue()
    users = [f"u{n}" for n in range(5000)]
    for u in users:
        q.join(u)
    q.open(random.Random(20261206))
    rho = _spearman(list(range(1, 5001)), [q.place(u) or 0 for u in users])
    assert abs(rho) <= 0.05, rho


def test_every_order_of_a_small_pre_queue_is_about_equally_likely() -> None:
    rng = random.Random(99)
    draws = Counter(tuple(opening_order("abcd", rng)) for _ in range(48_000))
    assert len(draws) == 24  # every one of the 4! orders occurs
    # 2,000 expected each; a biased shuffle (e.g. swapping with any index) is off by far more
    assert all(1_800 <= n <= 2_200 for n in draws.values()), draws


def test_the_default_draw_uses_the_os_randomness() -> None:
    users = [f"u{n}" for n in range(64)]
    assert opening_order(users) != opening_order(users)  # 1 in 64! to fail

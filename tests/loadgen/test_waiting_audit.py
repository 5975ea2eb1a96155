"""The waiting room's audit as pure functions over crafted histories: a fair, tight run passes,
and each unfairness (correlated pre-queue, an inversion, a booking without admission, a bot
that gained, a seat left unsold) is found."""

from __future__ import annotations

import itertools
import random

import pytest

from loadgen.audit import ServerState
from loadgen.ledger import BookAttempt, Ledger, Outcome
from loadgen.waiting.audit import (
    NOT_ENOUGH,
    RHO_MIN_N,
    SaleEnd,
    WaitingAudit,
    admission_inversions,
    audit_waiting,
    judge_order,
    place_inversions,
    polite_429,
    unadmitted_bookings,
)
from loadgen.waiting.history import Exchange, History, Kind, Sample
from loadgen.waiting.order import count_pairs, ranks, spearman
from loadgen.waiting.report import tallies, timeline
from loadgen.waiting.wire import Sale
from loadgen.wire import Booking, BookingRequest, Coach, Passenger, RouteDef, Seat

RID = "L0001-20270101"
ROUTE = RouteDef(
    train="L0001",
    date="2027-01-01",
    stations=("A", "B", "C"),
    coaches=(Coach(number="01", klass="second", rows=1, letters="AB"),),
    route_id=RID,
)
SEATS = ("01A", "01B")


# ---- order statistics ----------------------------------------------------------------------


def test_ranks_give_ties_their_average_rank() -> None:
    assert ranks([10, 30, 20, 30]) == [1.0, 3.5, 2.0, 3.5]


def test_spearman_is_one_for_the_same_order_and_minus_one_for_the_reverse() -> None:
    xs = [0.5, 1.0, 7.0, 9.5, 12.0]
    assert spearman(xs, [1, 2, 3, 4, 5]) == pytest.approx(1.0)
    assert spearman(xs, [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [2, 1]) is None  # undefined under three pairs


def test_a_shuffled_pre_queue_passes_the_order_check() -> None:
    n = RHO_MIN_N + 1_000
    places = list(range(1, n + 1))
    random.Random(22).shuffle(places)

    check = judge_order([(float(t), p) for t, p in enumerate(places)])

    assert check.verdict == "uncorrelated" and check.n == n
    assert check.rho is not None and abs(check.rho) <= 0.05


def test_a_pre_queue_in_join_order_fails_the_order_check() -> None:
    n = RHO_MIN_N
    check = judge_order([(float(t), t + 1) for t in range(n)])

    assert check.verdict == "correlated" and check.rho == pytest.approx(1.0)


def test_too_few_pre_queue_joiners_are_not_judged() -> None:
    check = judge_order([(float(t), t + 1) for t in range(RHO_MIN_N - 1)])

    assert check.verdict == NOT_ENOUGH and check.rho == pytest.approx(1.0)


def test_count_pairs_agrees_with_counting_every_pair() -> None:
    rng = random.Random(5)
    queries = [(rng.randrange(20), rng.randrange(20)) for _ in range(60)]
    items = [(rng.randrange(20), rng.randrange(20)) for _ in range(70)]
    brute = sum(1 for q, i in itertools.product(queries, items) if i[0] > q[0] and i[1] < q[1])

    assert count_pairs(queries, items) == brute


# ---- post-opening joiners and admission order ----------------------------------------------


def test_post_opening_joiners_in_join_order_have_no_inversion() -> None:
    # (join sent, join answered, place): each answered before the next was sent
    joins = [(1.0, 1.1, 10), (2.0, 2.1, 11), (3.0, 3.1, 12)]

    assert place_inversions(joins) == (3, 0)


def test_a_later_joiner_placed_ahead_is_an_inversion() -> None:
    joins = [(1.0, 1.1, 10), (2.0, 2.1, 12), (3.0, 3.1, 11)]

    assert place_inversions(joins) == (3, 1)


def test_concurrent_joins_may_be_placed_either_way() -> None:
    # the second was sent before the first was answered: no causal order between them
    joins = [(1.0, 1.5, 11), (1.2, 1.3, 10)]

    assert place_inversions(joins) == (0, 0)


def test_an_admission_out_of_place_order_counts_only_beyond_one_step() -> None:
    admitted = [(5, 10.0)]  # place 5 told admitted at t=10
    assert admission_inversions([(4, 10.5)], admitted, step=1.0) == 0  # stale cache: excused
    assert admission_inversions([(4, 11.5)], admitted, step=1.0) == 1  # place 4 still waiting
    assert admission_inversions([(6, 20.0)], admitted, step=1.0) == 0  # behind: fine


# ---- admissions and bookings ---------------------------------------------------------------


def _x(user: str, op: str, t: float, status: int | None = 200, **kw: object) -> Exchange:
    return Exchange(user, op, t, t + 0.01, status, **kw)  # type: ignore[arg-type]


def test_a_201_without_admission_is_found() -> None:
    found = unadmitted_bookings({"bot": [_x("bot", "book", 1.0, 201, carried=None)]})

    assert found == ["bot booked at 1.000 with no admission"]


def test_a_201_with_ones_own_admission_given_before_passes() -> None:
    mine = [
        _x("u", "poll", 1.0, state="admitted", place=1, admission="tok-u"),
        _x("u", "book", 2.0, 201, carried="tok-u"),
    ]

    assert unadmitted_bookings({"u": mine}) == []


def test_a_201_with_someone_elses_or_a_later_admission_is_found() -> None:
    alice = [_x("alice", "poll", 1.0, state="admitted", place=1, admission="tok-a")]
    bot = [_x("bot", "book", 2.0, 201, carried="tok-a")]
    early = [
        _x("eve", "book", 1.0, 201, carried="tok-e"),
        _x("eve", "poll", 3.0, state="admitted", place=2, admission="tok-e"),
    ]

    found = unadmitted_bookings({"alice": alice, "bot": bot, "eve": early})

    assert len(found) == 2 and all("an admission not given to it" in f for f in found)


def test_a_429_to_a_poll_sent_as_advised_is_counted() -> None:
    kinds = {"u": Kind.EARLY, "v": Kind.LATE, "bot": Kind.TIGHT}
    u = [
        _x("u", "join", 0.0, state="waiting", place=3, advice=2.0),
        _x("u", "poll", 2.02, 429, advice=5.0),  # sent 2.01 s after the answer: as advised
    ]
    v = [  # too soon: its own fault
        _x("v", "join", 0.0, state="waiting", place=5, advice=2.0),
        _x("v", "poll", 1.5, 429, advice=1.0),
    ]
    bot = [
        _x("bot", "join", 0.0, state="waiting", place=4, advice=2.0),
        _x("bot", "poll", 2.5, 429, advice=2.0),  # a bot's 429 is never the server's fault
    ]

    assert polite_429({"u": u, "v": v, "bot": bot}, kinds) == 1


# ---- the whole audit -----------------------------------------------------------------------


class Story:
    """A small sale, two seats on one route, told as the run would record it; spoiled by tests."""

    def __init__(self) -> None:
        self.history = History(opens_at=10.0)
        self.ledger = Ledger(routes={RID: ROUTE})
        self.listed: list[Booking] = []
        self.frontier = 2
        self.left = {"second": 0}
        self._n = 0

    def user(self, name: str, kind: Kind, joined: float, place: int) -> None:
        self.history.kinds[name] = kind
        early = joined < self.history.opens_at
        add = self.history.exchanges.append
        add(_x(name, "join", joined, state="not-open" if early else "waiting",
               place=None if early else place, advice=1.0))  # fmt: skip
        if early:
            add(_x(name, "poll", 10.5, state="waiting", place=place, advice=1.0))

    def admit_and_book(self, name: str, at: float, seat: str) -> None:
        place = next(x.place for x in self.history.exchanges if x.user == name and x.place)
        token = f"tok-{name}"
        self.history.exchanges.append(
            _x(name, "poll", at, state="admitted", place=place, admission=token)
        )
        self.book(name, at + 0.1, seat, carried=token)

    def book(self, name: str, at: float, seat: str, carried: str | None) -> None:
        self._n += 1
        request = BookingRequest(
            origin="A", destination="C", klass="second",
            passengers=(Passenger("P", f"{self._n:018d}"),),
        )  # fmt: skip
        booking = Booking(
            booking_id=f"B{self._n}", route_id=RID, status="held", origin="A", destination="C",
            klass="second", seats=(Seat("01", seat, 0),), user=name,
            passengers=request.passengers,
        )  # fmt: skip
        self.history.exchanges.append(_x(name, "book", at, 201, carried=carried))
        self.ledger.attempts.append(
            BookAttempt(f"k{self._n}", RID, name, request, Outcome.ACKNOWLEDGED, booking)
        )
        self.listed.append(booking)

    def audit(self) -> WaitingAudit:
        sale = Sale(sale_id="S1", routes=(RID,), opens_at="", state="sold-out",
                    queued=4, admitted=self.frontier, admit_per_second=None)  # fmt: skip
        server = ServerState(routes={RID: ROUTE}, bookings={RID: tuple(self.listed)})
        return audit_waiting(self.history, self.ledger, SaleEnd(sale, server, {RID: self.left}))


def _honest(*, ann_books: bool = True) -> Story:
    """ann and bob join before the opening and book the two seats; cid and dan join after and
    hear the sale sold out."""
    story = Story()
    story.user("ann", Kind.EARLY, 2.0, place=2)
    story.user("bob", Kind.EARLY, 3.0, place=1)
    story.user("cid", Kind.LATE, 11.0, place=3)
    story.user("dan", Kind.LATE, 12.0, place=4)
    story.admit_and_book("bob", 10.6, "01A")
    if ann_books:
        story.admit_and_book("ann", 10.7, "01B")
    for name in ("cid", "dan"):
        story.history.exchanges.append(_x(name, "poll", 14.0, state="sold-out", advice=30.0))
    return story


def test_a_fair_tight_sale_passes() -> None:
    result = _honest().audit()

    assert result.ok, result.details
    assert (result.admitted_users, result.post_opening_joiners) == (2, 2)
    assert result.pre_opening.n == 2 and result.pre_opening.verdict == NOT_ENOUGH
    assert (result.seat_segments_sold, result.seat_segments) == (4, 4)
    assert result.sold_exactly and result.booking.ok
    assert result.admitted_per_seat == 1.0 and result.warnings == ()


def test_automatic_admission_past_its_factor_is_a_warning_not_a_failure() -> None:
    story = _honest()
    story.frontier = 4  # everyone, for two seats: the rule allows three

    result = story.audit()

    assert result.ok and result.admitted_per_seat == 2.0
    assert result.warnings == (
        "automatic admission admitted 4 people for 2 seats (2.0 a seat; its rule allows 1.5)",
    )


def test_a_queue_skipper_that_booked_fails_the_audit() -> None:
    story = _honest(ann_books=False)  # ann's seat went to the bot instead
    story.history.kinds["bot"] = Kind.SKIP
    story.book("bot", 10.65, "01B", carried=None)

    result = story.audit()

    assert not result.ok
    assert result.skip_bot_bookings == 1 and result.unadmitted_bookings == 1
    assert result.unadmitted_listed == 1


def test_a_tight_poller_seated_ahead_of_an_unseated_honest_user_is_a_warning() -> None:
    story = Story()
    story.user("ann", Kind.EARLY, 2.0, place=2)
    story.user("bob", Kind.EARLY, 3.0, place=1)
    story.user("bot", Kind.TIGHT, 4.0, place=3)
    story.user("cid", Kind.LATE, 11.0, place=4)
    story.admit_and_book("bob", 10.6, "01A")
    story.admit_and_book("bot", 10.62, "01B")  # heard it first
    story.history.exchanges.append(  # ann, admitted in order, came back too late
        _x("ann", "poll", 10.9, state="admitted", place=2, admission="tok-ann")
    )
    story.history.exchanges.append(_x("cid", "poll", 14.0, state="sold-out", advice=30.0))
    story.frontier = 3

    result = story.audit()

    assert result.ok, result.details
    assert result.tight_bot_seats_ahead == 1 and result.tight_bot_jumps == 0
    assert result.warnings == (
        "tight pollers booked 1 seats while an honest user placed before them got none",
    )


def test_a_user_shown_two_places_fails_the_audit() -> None:
    story = _honest()
    story.history.exchanges.append(_x("dan", "join", 15.0, state="sold-out", place=5))

    result = story.audit()

    assert not result.ok and result.two_places == 1


def test_a_late_joiner_placed_ahead_of_an_earlier_one_fails_the_audit() -> None:
    story = Story()
    story.user("cid", Kind.LATE, 11.0, place=4)
    story.user("dan", Kind.LATE, 12.0, place=3)
    story.frontier = 0
    story.left = {"second": 2}

    result = story.audit()

    assert result.place_inversions == 1 and not result.ok


def test_a_seat_left_unsold_fails_the_audit() -> None:
    story = _honest(ann_books=False)
    story.left = {"second": 1}

    result = story.audit()

    assert not result.ok and not result.sold_exactly
    assert (result.seat_segments_sold, result.seat_segments) == (2, 4)


def test_a_seat_segment_unsold_fails_even_if_availability_shows_none() -> None:
    story = _honest(ann_books=False)
    story.left = {"second": 0}  # what a server miscounting its availability would show

    result = story.audit()

    assert not result.ok and not result.sold_exactly
    assert (result.seat_segments_sold, result.seat_segments) == (2, 4)


def test_a_seat_shown_available_fails_even_if_every_seat_was_booked() -> None:
    story = _honest()
    story.left = {"second": 1}

    result = story.audit()

    assert not result.ok and not result.sold_exactly
    assert (result.seat_segments_sold, result.seat_segments) == (4, 4)


def test_timeline_counts_the_queue_admissions_and_bookings_per_second() -> None:
    story = _honest()
    story.history.samples.append(Sample(10.2, "open", joined=4, admitted=2))
    story.history.samples.append(Sample(9.8, "scheduled", joined=2, admitted=0))
    story.history.samples.append(Sample(14.2, "sold-out", joined=4, admitted=2))

    seconds = {s.t: s for s in timeline(story.history, start=2.0, end=14.5)}

    assert seconds[-5].queue == 2  # ann and bob in the pre-queue
    assert seconds[0].admitted == 2 and seconds[0].bookings == 2
    assert seconds[-1].server_queue == 2 and seconds[0].server_queue == 2
    assert seconds[-2].server_queue is None and seconds[4].server_queue is None
    assert seconds[2].queue == 2  # cid and dan waiting
    assert seconds[4].queue == 0  # told sold out
    by_state, final, outcomes = tallies(story.history)
    assert by_state == {"admitted": 2, "not-open": 2, "sold-out": 2, "waiting": 4}
    assert final == {"admitted": 2, "sold-out": 2}
    assert outcomes == {"early booked": 2, "late told sold-out": 2}

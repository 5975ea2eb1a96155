"""Scenarios: which routes a run creates and which operations its users send.

A workload is shared by all senders of a run (closed-loop workers or the open-loop scheduler):
each asks it for the next operation and tells it what the server acknowledged, so follow-ups
(pay for a hold, change one's mind) come from the same simulated user.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import ClassVar, Literal

from loadgen.routes import route_id
from loadgen.wire import Booking, BookingRequest, Passenger, RouteDef

NAMES = ("Li Lei", "Han Meimei", "Wang Fang", "Zhang Wei", "Liu Yang", "Chen Jing", "Zhao Min")
GROUP_SIZES = (1, 2, 3, 4, 5)
ZIPF_S = 1.1


@dataclass(frozen=True, slots=True)
class Query:
    route_id: str
    origin: str
    destination: str
    kind: ClassVar[Literal["availability"]] = "availability"


@dataclass(frozen=True, slots=True)
class Book:
    route_id: str
    user: str
    key: str
    request: BookingRequest
    kind: ClassVar[Literal["book"]] = "book"


@dataclass(frozen=True, slots=True)
class Confirm:
    booking_id: str
    user: str
    kind: ClassVar[Literal["confirm"]] = "confirm"


@dataclass(frozen=True, slots=True)
class Cancel:
    booking_id: str
    user: str
    kind: ClassVar[Literal["cancel"]] = "cancel"


Op = Query | Book | Confirm | Cancel


class Workload:
    """Draws operations; subclasses decide the mix."""

    def __init__(self, routes: Sequence[RouteDef], rng: Random, run_tag: str, users: int) -> None:
        if not routes:
            raise ValueError("a workload needs at least one route")
        self.routes = list(routes)
        self.rng = rng
        self.run_tag = run_tag
        self.users = users
        self._serial = itertools.count(1)

    def next_op(self) -> Op:
        """The next operation to send."""
        raise NotImplementedError

    def booked(self, op: Book, booking: Booking) -> None:
        """The server acknowledged `op` with `booking` (held or waitlisted)."""

    def book(
        self, route: RouteDef, group: int, *, full_journey: float, waitlist: bool = False
    ) -> Book:
        """A booking of `group` fresh passengers, never sent before in this run."""
        rng, serial = self.rng, next(self._serial)
        origin, destination = self.journey(route, full_journey)
        klass = self.klass(route)
        letters = set().union(*(c.letters for c in route.coaches if c.klass == klass))
        window = ("A", "F") if {"A", "F"} <= letters and rng.random() < 0.15 else None
        # Passenger ids look like 18-digit ID numbers and are unique per run, so the audit
        # can recognise a request whose reply never came by its passengers.
        passengers = tuple(
            Passenger(name=rng.choice(NAMES), id=f"{self.run_tag}{serial:09d}{k:03d}")
            for k in range(group)
        )
        request = BookingRequest(
            origin=origin,
            destination=destination,
            klass=klass,
            passengers=passengers,
            seat_letters=window,
            together=True if group > 1 and rng.random() < 0.5 else None,
            waitlist=True if waitlist else None,
        )
        user = f"lg{self.run_tag}-u{rng.randrange(self.users):06d}"
        return Book(route_id(route), user, f"lg-{self.run_tag}-{serial}", request)

    def query(self, route: RouteDef) -> Query:
        """An availability query for a random journey."""
        origin, destination = self.journey(route, full_journey=0.3)
        return Query(route_id(route), origin, destination)

    def journey(self, route: RouteDef, full_journey: float) -> tuple[str, str]:
        """End to end with probability `full_journey`, else a random sub-journey."""
        names = route.stations
        if self.rng.random() < full_journey:
            return names[0], names[-1]
        i = self.rng.randrange(len(names) - 1)
        return names[i], names[self.rng.randrange(i + 1, len(names))]

    def klass(self, route: RouteDef) -> str:
        """A class, in proportion to its seats on the train."""
        seats: dict[str, int] = {}
        for c in route.coaches:
            seats[c.klass] = seats.get(c.klass, 0) + c.rows * len(c.letters)
        return self.rng.choices(list(seats), weights=list(seats.values()))[0]


class FlashSale(Workload):
    """Everyone books at once: Zipf-skewed demand over the routes, groups of 1–5, mostly whole
    journeys; one in ten asks for the waitlist. Half the holds are paid for right away, one in
    ten is cancelled (seats back on sale, waitlist promoted)."""

    def __init__(self, routes: Sequence[RouteDef], rng: Random, run_tag: str, users: int) -> None:
        super().__init__(routes, rng, run_tag, users)
        weights = [1 / (k + 1) ** ZIPF_S for k in range(len(self.routes))]
        self._cum = list(itertools.accumulate(weights))
        self._follow_ups: deque[Op] = deque()

    def next_op(self) -> Op:
        if self._follow_ups:
            return self._follow_ups.popleft()
        rng = self.rng
        route = rng.choices(self.routes, cum_weights=self._cum)[0]
        group = rng.choices(GROUP_SIZES, weights=(45, 25, 15, 10, 5))[0]
        return self.book(route, group, full_journey=0.7, waitlist=rng.random() < 0.1)

    def booked(self, op: Book, booking: Booking) -> None:
        draw = self.rng.random()
        if booking.status == "held":
            if draw < 0.5:
                self._follow_ups.append(Confirm(booking.booking_id, op.user))
            elif draw < 0.6:
                self._follow_ups.append(Cancel(booking.booking_id, op.user))
        elif draw < 0.1:
            self._follow_ups.append(Cancel(booking.booking_id, op.user))


class Mixed(Workload):
    """Steady traffic: 60% availability queries, 30% bookings (groups of 1–3), 10% cancels of
    bookings this run made (a query when there is none to cancel)."""

    def __init__(self, routes: Sequence[RouteDef], rng: Random, run_tag: str, users: int) -> None:
        super().__init__(routes, rng, run_tag, users)
        self._live: list[Cancel] = []

    def next_op(self) -> Op:
        rng = self.rng
        draw, route = rng.random(), rng.choice(self.routes)
        if draw < 0.6 or (draw >= 0.9 and not self._live):
            return self.query(route)
        if draw < 0.9:
            group = rng.choices((1, 2, 3), weights=(60, 25, 15))[0]
            return self.book(route, group, full_journey=0.3)
        # Swap-remove: O(1), and the order of live bookings does not matter.
        index = rng.randrange(len(self._live))
        self._live[index], self._live[-1] = self._live[-1], self._live[index]
        return self._live.pop()

    def booked(self, op: Book, booking: Booking) -> None:
        self._live.append(Cancel(booking.booking_id, op.user))


@dataclass(frozen=True)
class Plan:
    """What a scenario creates: how many routes of how many stations and seats."""

    workload: type[Workload]
    routes: int
    stations: int
    closed_loop_seats: bool
    """Size routes to the offered load so they sell out (flash sale), or use `seats`."""
    seats: int = 1_000


PLANS: dict[str, Plan] = {
    "flash-sale": Plan(FlashSale, routes=4, stations=5, closed_loop_seats=True),
    "mixed": Plan(Mixed, routes=2, stations=8, closed_loop_seats=False),
    "steady": Plan(Mixed, routes=1, stations=8, closed_loop_seats=False),
}


def seats_per_route(plan: Plan, routes: int, concurrency: int, duration: float) -> int:
    """Default train size: a flash sale offers about 8 seats per worker-second of the run, so
    any server answering within ~0.25 s sells out (the hottest route first) during the run."""
    if not plan.closed_loop_seats:
        return plan.seats
    return max(10, min(5_000, round(8 * concurrency * duration / routes)))


def users_for(concurrency: int, seats: int) -> int:
    """How many distinct customers a run plays: many more than there are connections, and about
    one per seat on sale, so per-user booking caps rarely bind (as in a real sale)."""
    return max(200, 20 * concurrency, seats)

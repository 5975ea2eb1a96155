"""What each user of a waiting-room run does, one request at a time, on the scheduler.

An honest user joins, polls no sooner than advised (`poll_after_seconds`, or a 429's
Retry-After) and, once admitted, books one seat once: whole journey, one passenger, trying
the sale's trains and classes in its own order until one has a seat (a 409 sold-out is an
answer, not a failure), then pays for the hold. An early joiner who is told the sale has not
opened comes back at the opening (within `spread` seconds of it, as clocks and reflexes
differ) or when advised, whichever is later: never sooner than advised.

Tight pollers poll every TIGHT_GAP_S and join again every TIGHT_REJOIN-th time, deaf to any
advice; queue-skippers never queue and book every SKIP_GAP_S with no admission, a forged
one, or one another user was given.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from random import Random
from typing import Any

from loadgen.client import Answer, Reply
from loadgen.driver import outcome_of
from loadgen.ledger import Action, BookAttempt, Ledger, Outcome
from loadgen.routes import route_id
from loadgen.stats import Stats
from loadgen.waiting.client import SaleClient
from loadgen.waiting.crowd import Member
from loadgen.waiting.history import Exchange, History, Kind
from loadgen.waiting.scheduler import Scheduler
from loadgen.waiting.wire import ADMITTED, FINAL_STATES, NOT_OPEN, QueueAnswer
from loadgen.wire import BookingRequest, Passenger, RouteDef, decode

TIGHT_GAP_S = 0.1
TIGHT_REJOIN = 5
TIGHT_MAX_OPS = 2_000
SKIP_GAP_S = 1.0
SKIP_TRIES = 20
RETRY_S = 1.0
RETRIES = 5
"""A request with no answer, or a 5xx, is tried again after RETRY_S, at most RETRIES times."""


@dataclass(slots=True)
class _User:
    member: Member
    ticket: str | None = None
    admission: str | None = None
    options: list[tuple[RouteDef, str]] = field(default_factory=list)
    ops: int = 0
    failures: int = 0


class Play:
    """Plays a crowd against one sale, filing every exchange in `history` and every booking
    and payment in `ledger` (for the booking audit)."""

    def __init__(
        self,
        client: SaleClient,
        sale_id: str,
        routes: list[RouteDef],
        history: History,
        ledger: Ledger,
        stats: Stats,
        scheduler: Scheduler,
        rng: Random,
        run_tag: str,
        spread: float,
    ) -> None:
        self.client, self.sale_id, self.routes = client, sale_id, routes
        self.history, self.ledger, self.stats = history, ledger, stats
        self.scheduler, self.rng, self.run_tag, self.spread = scheduler, rng, run_tag, spread
        self.users: dict[str, _User] = {}
        self.seen_admissions: list[str] = []
        """Admission tokens of honest users, for the borrowing queue-skippers."""
        self._serial = itertools.count(1)
        self._loop = asyncio.get_running_loop()

    def start(self, members: list[Member]) -> None:
        """Schedule every member's arrival (relative to the sale's opening)."""
        for m in members:
            user = self.users[m.user] = _User(m)
            self.history.kinds[m.user] = m.kind
            due = self.history.opens_at + m.arrives
            if m.kind is Kind.SKIP:
                self._at(due, self._skip, user, SKIP_TRIES)
            else:
                self._at(due, self._queue, user, "join")

    # ---- queueing ----------------------------------------------------------------------

    async def _queue(self, user: _User, op: str) -> None:
        name, sale = user.member.user, self.sale_id
        sent = self._loop.time()
        if op == "join":
            answer = await self.client.join(sale, name)
        else:
            answer = await self.client.poll(sale, name, user.ticket)
        received = self._loop.time()
        user.ops += 1
        self._count(op, answer, sent, received)
        queue = None
        if isinstance(answer, Reply) and answer.ok:
            queue = decode(answer.body, QueueAnswer)
        if queue is not None and isinstance(answer, Reply):
            token = queue.admission if queue.state == ADMITTED else None
            self.history.exchanges.append(
                Exchange(
                    name,
                    op,
                    sent,
                    received,
                    answer.status,
                    queue.state,
                    queue.place,
                    queue.poll_after_seconds,
                    token,
                )
            )
            user.ticket = queue.ticket or user.ticket
            self._next(user, queue, received)
            return
        self._file_error(name, op, sent, received, answer)
        if user.member.kind is Kind.TIGHT:
            self._tight_again(user, received)
        elif isinstance(answer, Reply) and answer.status == 429:
            self._at(received + (answer.retry_after or RETRY_S), self._queue, user, "poll")
        elif self._may_retry(user, answer):
            self._at(received + (_retry_after(answer) or RETRY_S), self._queue, user, op)

    def _next(self, user: _User, queue: QueueAnswer, received: float) -> None:
        if queue.state == ADMITTED and queue.admission:
            user.admission = queue.admission
            if user.member.kind is not Kind.TIGHT:
                self.seen_admissions.append(queue.admission)
            user.options = self._options()
            self._at(received, self._book, user)
        elif queue.state in FINAL_STATES:
            return
        elif user.member.kind is Kind.TIGHT:
            self._tight_again(user, received)
        else:
            due = received + queue.poll_after_seconds
            if queue.state == NOT_OPEN and user.member.kind is Kind.EARLY:
                # come back at the opening, not every second until then: still never sooner
                # than advised
                due = max(due, self.history.opens_at + self.rng.uniform(0.0, self.spread))
            self._at(due, self._queue, user, "poll")

    def _tight_again(self, user: _User, now: float) -> None:
        if user.ops < TIGHT_MAX_OPS:
            op = "join" if user.ops % TIGHT_REJOIN == 0 else "poll"
            self._at(now + TIGHT_GAP_S, self._queue, user, op)

    # ---- booking -----------------------------------------------------------------------

    def _options(self) -> list[tuple[RouteDef, str]]:
        """The sale's trains in a random order, each train's classes by a draw weighted by
        their seats (the class asked for first, the other when it is sold out)."""
        options: list[tuple[RouteDef, str]] = []
        for route in self.rng.sample(self.routes, len(self.routes)):
            seats: dict[str, int] = {}
            for c in route.coaches:
                seats[c.klass] = seats.get(c.klass, 0) + c.rows * len(c.letters)
            classes = list(seats)
            first = self.rng.choices(classes, weights=[seats[k] for k in classes])[0]
            options.extend((route, k) for k in [first, *(k for k in classes if k != first)])
        return options

    async def _book(self, user: _User) -> None:
        route, klass = user.options.pop(0)
        answer = await self._send_booking(user, route, klass, user.admission)
        if answer is None:
            return
        if isinstance(answer, Reply) and answer.status == 409 and user.options:
            self._at(self._loop.time(), self._book, user)
        elif isinstance(answer, Reply) and answer.status in (429, 503) and user.failures < RETRIES:
            user.failures += 1  # turned away before any actor saw it: the same choice again
            user.options.insert(0, (route, klass))
            self._at(self._loop.time() + (answer.retry_after or RETRY_S), self._book, user)

    async def _send_booking(
        self, user: _User, route: RouteDef, klass: str, admission: str | None
    ) -> Answer | None:
        """Book one whole-journey seat; the answer, or None after a booking was paid for."""
        name, rid, serial = user.member.user, route_id(route), next(self._serial)
        # passenger ids are unique per request, as loadgen's audit needs them
        passenger = Passenger(name="Wang Fang", id=f"{self.run_tag}9{serial:08d}000")
        request = BookingRequest(
            origin=route.stations[0], destination=route.stations[-1], klass=klass,
            passengers=(passenger,),
        )  # fmt: skip
        key = f"lgw-{self.run_tag}-{serial}"
        sent = self._loop.time()
        try:
            answer = await self.client.book_admitted(rid, name, request, key, admission)
        except asyncio.CancelledError:  # the run's deadline: its fate is unknown
            self.ledger.attempts.append(BookAttempt(key, rid, name, request, Outcome.INDETERMINATE))
            raise
        received = self._loop.time()
        self._count("book", answer, sent, received)
        outcome, booking = outcome_of(answer)
        self.ledger.attempts.append(BookAttempt(key, rid, name, request, outcome, booking))
        status = answer.status if isinstance(answer, Reply) else None
        problem = answer.problem() if isinstance(answer, Reply) else None
        self.history.exchanges.append(
            Exchange(
                name,
                "book",
                sent,
                received,
                status,
                slug=problem.slug if problem else None,
                carried=admission,
            )
        )
        if booking is not None and booking.status == "held":
            self._at(received, self._confirm, user, booking.booking_id)
            return None
        return answer

    async def _confirm(self, user: _User, booking_id: str) -> None:
        name = user.member.user
        sent = self._loop.time()
        try:
            answer = await self.client.confirm(booking_id, name)
        except asyncio.CancelledError:
            self.ledger.actions.append(Action(booking_id, "confirm", Outcome.INDETERMINATE))
            raise
        received = self._loop.time()
        self._count("confirm", answer, sent, received)
        outcome, booking = outcome_of(answer)
        self.ledger.actions.append(Action(booking_id, "confirm", outcome, booking))
        status = answer.status if isinstance(answer, Reply) else None
        self.history.exchanges.append(Exchange(name, "confirm", sent, received, status))

    # ---- queue-skippers ----------------------------------------------------------------

    async def _skip(self, user: _User, tries: int) -> None:
        route = self.rng.choice(self.routes)
        klass = route.coaches[-1].klass
        await self._send_booking(user, route, klass, self._bot_admission(user.member.variant))
        if tries > 1:
            self._at(self._loop.time() + SKIP_GAP_S, self._skip, user, tries - 1)

    def _bot_admission(self, variant: str) -> str | None:
        if variant == "borrowed" and self.seen_admissions:
            return self.rng.choice(self.seen_admissions)
        if variant == "none":
            return None
        if self.seen_admissions:  # a real one, its signature changed
            real = self.rng.choice(self.seen_admissions)
            tail = "AAAA" if not real.endswith("AAAA") else "BBBB"
            return real[:-4] + tail
        payload, mac = (base64.urlsafe_b64encode(secrets.token_bytes(n)).decode() for n in (12, 32))
        return f"{payload}.{mac}"

    # ---- plumbing ----------------------------------------------------------------------

    def _at(self, due: float, step: Callable[..., Awaitable[None]], *args: Any) -> None:
        self.scheduler.at(due, partial(step, *args))

    def _count(self, op: str, answer: Answer, sent: float, received: float) -> None:
        """Into the run's stats, the status mix keyed by operation (`poll 429 ...`)."""
        answered = isinstance(answer, Reply)
        self.stats.record(op, f"{op} {answer.key}", sent, received, answered=answered)

    def _may_retry(self, user: _User, answer: Answer) -> bool:
        if isinstance(answer, Reply) and answer.status < 500:
            return False  # refused for good (4xx): nothing to try again
        user.failures += 1
        return user.failures <= RETRIES

    def _file_error(self, name: str, op: str, sent: float, received: float, answer: Answer) -> None:
        status = answer.status if isinstance(answer, Reply) else None
        problem = answer.problem() if isinstance(answer, Reply) else None
        advice = answer.retry_after if isinstance(answer, Reply) else None
        self.history.exchanges.append(
            Exchange(
                name,
                op,
                sent,
                received,
                status,
                advice=advice,
                slug=problem.slug if problem else None,
            )
        )


def _retry_after(answer: Answer) -> float | None:
    return answer.retry_after if isinstance(answer, Reply) else None

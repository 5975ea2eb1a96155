"""A front end's side of the waiting rooms: what it keeps in memory so that polls and the
booking endpoint's admission check cost no I/O, and the keeper that moves every sale on.

Every front end runs the keeper, a few times a second: it reads the sales and their
queues, opens a sale at its time (draws its pre-queue), moves its frontier by its policy,
marks it sold out when nothing is left on its routes, and refreshes what polls are
answered from. The writes are safe to race (store.py): whichever front end gets there
first, the others' moves are dropped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

import redis.asyncio as aredis
import structlog

from actors.storage import keys, routes_store
from actors.storage.read_side import read_availability
from server.dispatch.holds import stop_if_cancelled
from server.waiting import policy
from server.waiting.registry import Sale, SaleRegistry
from server.waiting.sales import effective
from server.waiting.store import Figures, Joins
from server.waiting.tokens import Admission, BadToken, Signer, Ticket

log = structlog.get_logger("ticketd.waiting")

#: how long an admission lets its holder book
ADMISSION_SECONDS = 600.0
#: how long a ticket (a caller's place) is good for
TICKET_SECONDS = 86_400.0
#: seats left × this many may be admitted and not yet booked (the automatic policy)
AUTOMATIC_FACTOR = 1.5
#: the window over which the admission rate (for the estimated wait) is measured
_RATE_WINDOW = 10.0
#: callers whose last poll time is remembered, for the 429 on polling too fast
_POLLERS = 200_000


class NotAdmitted(Exception):
    """A booking on a route in a running sale without a valid admission for it."""


class PollTooSoon(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Poll again in {retry_after:.0f} s, as advised.")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Answer:
    """A queue answer: the caller's view, and the tokens that go with it."""

    view: policy.QueueView
    ticket: str | None
    admission: str | None


class WaitingRoom:
    """The sales as this front end knows them, refreshed by `run`."""

    def __init__(self, client: aredis.Redis, signer: Signer, lean_url: str | None = None
                 ) -> None:  # fmt: skip
        self.client = client
        self.signer = signer
        self.registry = SaleRegistry(client, lean_url)
        self.queues = self.registry.queues
        self._joins = Joins(self.queues)
        self.sales: dict[str, Sale] = {}
        self.figures: dict[str, Figures] = {}
        #: route id -> the sale it is in (until the sale closes)
        self._gated: dict[str, str] = {}
        #: sale -> (time, frontier) over the last _RATE_WINDOW s, and once a second
        #: over an admission's lifetime
        self._history: dict[str, deque[tuple[float, int]]] = {}
        self._course: dict[str, deque[tuple[float, int]]] = {}
        #: (sale, user) -> when they last polled, and the wait they were advised then
        self._polled: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()
        self._seats: dict[str, int] = {}  # route id -> its seats (definitions never change)
        #: sale -> seats left on its routes, as the last pass counted them
        self.seats_left: dict[str, int] = {}
        self._booked: dict[str, set[str]] = {}  # sale -> users who booked, this loop turn
        self._tasks: set[asyncio.Task[None]] = set()

    def close(self) -> None:
        """Let go of the queue's lean connection (at shutdown, the keeper stopped)."""
        self.queues.close()

    # ---- what the endpoints ask, from memory -------------------------------------------

    def gate(self, route_id: str) -> str | None:
        """The sale the route is in (its bookings need an admission), if any: from its
        creation to its closing. Before the opening nobody holds an admission, so nobody
        books ahead of the queue. (Every booking asks: a route in no sale costs one dict
        lookup.)"""
        return self._gated.get(route_id)

    def check(self, sale_id: str, user: str, token: str | None, now: float) -> Admission:
        """The user's admission to the sale that `token` is; NotAdmitted if it is none
        (a `waitlist_only` one admits waitlisted bookings alone: the caller checks)."""
        if token is None:
            raise NotAdmitted("it carries no Admission header")
        try:
            return self.signer.check_admission(token, sale_id, user, now)
        except BadToken as exc:
            raise NotAdmitted(str(exc)) from None

    def state(self, sale_id: str, now: float) -> str:
        sale, figures = self.sales[sale_id], self.figures.get(sale_id)
        stored = figures.state if figures is not None else policy.SCHEDULED
        if stored != policy.SCHEDULED:  # every poll asks: no datetime unless it matters
            return stored
        return effective(stored, sale.opens_at, dt.datetime.fromtimestamp(now, dt.UTC))

    def rate(self, sale_id: str) -> float:
        """Admissions per second over the last _RATE_WINDOW seconds."""
        seen = self._history.get(sale_id)
        if not seen or len(seen) < 2 or seen[-1][0] <= seen[0][0]:
            return 0.0
        return (seen[-1][1] - seen[0][1]) / (seen[-1][0] - seen[0][0])

    async def join(self, sale_id: str, user: str, now: float) -> Answer:
        place = await self._joins.join(sale_id, user)
        ticket = self.signer.ticket(Ticket(sale_id, user, place, now + TICKET_SECONDS))
        return self._answer(sale_id, user, place or None, ticket, now)

    async def poll(self, sale_id: str, user: str, ticket: str | None, now: float) -> Answer:
        """The caller's view, from their ticket and memory: in the queue, or in the
        pre-queue before the draw. One Redis read only without a valid ticket, or for a
        pre-queue ticket once the draw gave its holder a place (then a new ticket)."""
        last, advised = self._polled.get((sale_id, user), (None, 0.0))
        # judged by the wait the caller was advised last time, not by this answer's: one
        # who polls as told is answered even when the advice grew (at the opening, say)
        if last is not None and now - last < advised / 2:
            raise PollTooSoon(advised - (now - last))
        place: int | None = None
        known = False  # the place is known without asking Redis
        if ticket is not None:
            try:
                place = self.signer.check_ticket(ticket, sale_id, user, now).place or None
            except BadToken:
                ticket = None
            else:
                figures = self.figures.get(sale_id)
                known = place is not None or figures is None or not figures.opened
        if not known:  # no valid ticket, or in the pre-queue when it was made and drawn since
            raw = await self.client.hget(keys.sale_places(sale_id), user)
            place = None if raw is None else int(raw)
            if place is not None:
                ticket = self.signer.ticket(Ticket(sale_id, user, place, now + TICKET_SECONDS))
        answer = self._answer(sale_id, user, place, ticket, now)
        self._polled[(sale_id, user)] = (now, answer.view.poll_after_seconds)
        self._polled.move_to_end((sale_id, user))
        if len(self._polled) > _POLLERS:
            self._polled.popitem(last=False)
        return answer

    def _answer(self, sale_id: str, user: str, place: int | None, ticket: str | None,
                now: float) -> Answer:  # fmt: skip
        figures = self.figures.get(sale_id)
        frontier = figures.frontier if figures is not None else 0
        state, rate = self.state(sale_id, now), self.rate(sale_id)
        fixed = self.sales[sale_id].admit_per_second
        if state == policy.OPEN and fixed is not None:
            # while anyone waits, a fixed-rate frontier moves at exactly that rate: known
            # from the opening on, where a measured one lags
            rate = fixed
        view = policy.view(state, place, frontier, rate)
        admission = None
        if view.state == policy.ADMITTED:
            admission = self.signer.admission(Admission(sale_id, user, now + ADMISSION_SECONDS))
        elif view.state == policy.SOLD_OUT and place is not None:
            # everybody still waiting is offered the waitlist (cancelled seats go to it)
            waitlist = Admission(sale_id, user, now + ADMISSION_SECONDS, waitlist_only=True)
            admission = self.signer.admission(waitlist)
        return Answer(view, ticket, admission)

    # ---- the keeper -------------------------------------------------------------------

    async def run(self, interval: float = 0.2) -> None:
        """Move every sale on until cancelled; a failed pass is logged and retried."""
        while True:
            stop_if_cancelled()  # redis-py may swallow our cancel (server/dispatch/holds.py)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis may come back
                log.warning("waiting room pass failed", error=repr(exc))
            await asyncio.sleep(interval)

    async def refresh(self) -> None:
        """One pass over every sale."""
        self.sales = await self.registry.all()
        now = time.time()
        gated: dict[str, str] = {}
        for sale in self.sales.values():
            figures = await self.queues.figures(sale.sale_id)
            state = effective(figures.state, sale.opens_at, dt.datetime.fromtimestamp(now, dt.UTC))
            if state == policy.CLOSED:
                self.figures[sale.sale_id] = figures
                self._history.pop(sale.sale_id, None)  # admits nobody any more
                self._course.pop(sale.sale_id, None)
                continue
            if state != figures.state:  # its time came: open (every front end may)
                await self.queues.set_state(sale.sale_id, state)
            if not figures.opened and state != policy.SCHEDULED:
                await self.queues.open(sale.sale_id)  # draw the pre-queue, once
            self.seats_left[sale.sale_id] = left = await self._seats_left(sale)
            if left == 0 and state in (policy.OPEN, policy.PAUSED):
                state = policy.SOLD_OUT  # everybody still waiting hears it at once
                await self.queues.set_state(sale.sale_id, state)
            if state == policy.OPEN:
                await self._advance(sale, left, now)
            self.figures[sale.sale_id] = figures = await self.queues.figures(sale.sale_id)
            if figures.opened:  # the rate is measured from the opening on, not before
                if sale.sale_id not in self._history:  # nobody was admitted before it
                    self._remember(sale.sale_id, sale.opens_at.timestamp(), 0)
                self._remember(sale.sale_id, now, figures.frontier)
            if figures.state != policy.CLOSED:
                gated.update(dict.fromkeys(sale.routes, sale.sale_id))
        self._gated = gated

    def _remember(self, sale_id: str, now: float, frontier: int) -> None:
        """Keep the frontier's recent course (the rate) and, sparser, its course over an
        admission's lifetime (whose admissions have lapsed)."""
        seen = self._history.setdefault(sale_id, deque())
        seen.append((now, frontier))
        while seen and seen[0][0] < now - _RATE_WINDOW:
            seen.popleft()
        course = self._course.setdefault(sale_id, deque())
        if not course or now - course[-1][0] >= 1.0:
            course.append((now, frontier))
        while len(course) > 1 and course[1][0] <= now - ADMISSION_SECONDS:
            course.popleft()  # keeps the newest sample at least a lifetime old

    async def _advance(self, sale: Sale, left: int, now: float) -> None:
        rule: policy.Policy
        if sale.admit_per_second is not None:
            rule = policy.FixedRate(sale.admit_per_second)
        else:
            rule = policy.Automatic(AUTOMATIC_FACTOR)
        # admitted and not booked: the frontier (as the move reads it) less those who
        # booked, and less those admitted over an admission's lifetime ago (anyone then
        # either booked or let their admission lapse)
        booked = await self.client.scard(keys.sale_booked(sale.sale_id))
        course = self._course.get(sale.sale_id)
        lapsed = course[0][1] if course and course[0][0] <= now - ADMISSION_SECONDS else 0
        await self.queues.advance(sale.sale_id, rule, seats_left=left,
                                  settled=max(booked, lapsed))  # fmt: skip

    async def _seats_left(self, sale: Sale) -> int:
        """Seats still bookable for some trip, over the sale's routes (stored figures)."""
        total = 0
        read = await read_availability(self.client, sale.routes)
        for route_id, (stored, _) in zip(sale.routes, read, strict=True):
            if stored is None:  # no actor ever ran: every seat is free
                if route_id not in self._seats:
                    route = await routes_store.fetch(self.client, route_id)
                    self._seats[route_id] = len(route.seats())
                total += self._seats[route_id]
                continue
            total += sum(max(row, default=0) for row in stored.matrix.values())
        return total

    def booked(self, sale_id: str, user: str) -> None:
        """Count the user as having booked in the sale (for the automatic policy): kept
        off the booking's answer, and written once per loop turn for all bookings."""
        if not self._booked:
            asyncio.get_running_loop().call_soon(self._write_booked)
        self._booked.setdefault(sale_id, set()).add(user)

    def _write_booked(self) -> None:
        booked, self._booked = self._booked, {}
        task = asyncio.create_task(self._sadd(booked))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _sadd(self, booked: dict[str, set[str]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for sale_id, users in booked.items():
                    pipe.sadd(keys.sale_booked(sale_id), *users)
                await pipe.execute()
        except Exception as exc:  # a count for the automatic policy, not a booking
            log.warning("sale bookings not counted", error=repr(exc))

"""A poll is answered from the caller's ticket and the front end's memory: in the
pre-queue before the draw, and in the queue after it. Redis is asked once, when a
pre-queue ticket meets a sale drawn since (its holder then gets a ticket with a place),
and a poll sooner than advised is refused before any work."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import redis.asyncio

from actors.storage import keys
from server.waiting import policy
from server.waiting.registry import Sale
from server.waiting.room import PollTooSoon, WaitingRoom
from server.waiting.store import Figures
from server.waiting.tokens import Signer, Ticket

SALE = "Spolls"


class CountingClient:
    """The real client, counting the reads a poll may make."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.hgets = 0

    async def hget(self, *args: Any) -> Any:
        self.hgets += 1
        return await self.client.hget(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def _room(client: CountingClient, opened: bool, frontier: int = 0) -> WaitingRoom:
    room = WaitingRoom(client, Signer("k" * 32))  # type: ignore[arg-type]
    opens = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=-1 if opened else 600)
    room.sales[SALE] = Sale(SALE, ["R1-20261201"], opens, 10.0)
    state = policy.OPEN if opened else policy.SCHEDULED
    room.figures[SALE] = Figures(opened, state, frontier, queued=100, joins=100)
    return room


async def test_pre_queue_and_queue_polls_ask_redis_nothing(
    redis_client: redis.asyncio.Redis,
) -> None:
    client = CountingClient(redis_client)
    now = time.time()
    before = _room(client, opened=False)
    pre = before.signer.ticket(Ticket(SALE, "alice", 0, now + 600))
    answer = await before.poll(SALE, "alice", pre, now)
    assert (answer.view.state, answer.ticket) == (policy.NOT_OPEN, pre)
    after = _room(client, opened=True, frontier=3)
    placed = after.signer.ticket(Ticket(SALE, "bob", 7, now + 600))
    answer = await after.poll(SALE, "bob", placed, now)
    assert (answer.view.state, answer.view.place, answer.view.ahead) == (policy.WAITING, 7, 3)
    assert client.hgets == 0


async def test_a_pre_queue_ticket_after_the_draw_is_read_once_and_exchanged(
    redis_client: redis.asyncio.Redis,
) -> None:
    client = CountingClient(redis_client)
    await redis_client.hset(keys.sale_places(SALE), "carol", 5)
    room = _room(client, opened=True, frontier=1)
    now = time.time()
    pre = room.signer.ticket(Ticket(SALE, "carol", 0, now + 600))
    answer = await room.poll(SALE, "carol", pre, now)
    assert (answer.view.state, answer.view.place, client.hgets) == (policy.WAITING, 5, 1)
    assert answer.ticket is not None
    assert room.signer.check_ticket(answer.ticket, SALE, "carol", now).place == 5


async def test_a_poll_sooner_than_advised_is_refused_before_any_work(
    redis_client: redis.asyncio.Redis,
) -> None:
    client = CountingClient(redis_client)
    room = _room(client, opened=False)
    now = time.time()
    await room.poll(SALE, "dave", None, now)  # no ticket: one read
    with pytest.raises(PollTooSoon):
        await room.poll(SALE, "dave", None, now + 0.1)
    assert client.hgets == 1

"""Per-route batching (server/dispatch/batches.py): under load a call waits, at most the
linger, until as many requests have queued as the last call saw; a lone request never
waits.

A fake data-plane link stands in for the route actor: batching is front-end logic."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from actors.domain.messages import Command, GetBooking, decode_commands, encode
from actors.domain.views import Reply, Result
from server import metrics
from server.dispatch import batches as batches_module
from server.dispatch.batches import Batches
from server.dispatch.channel import Channel
from server.settings import Settings
from tests.support.domain import make_route

LINGER = 0.2  # long, so a test tells waiting from not waiting on a busy machine


@pytest.fixture(autouse=True)
def loaded_for_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A route counts as loaded for 5 s after a call that saw several requests, not 0.1 s: on
    a busy CI machine the test's next request can come later than that (a test that needs
    the window sets its own)."""
    monkeypatch.setattr(batches_module, "_LOADED_SECONDS", 5.0)


class FakeLink:
    """Answers every batch after `delay`, recording each batch's size."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sizes: list[int] = []

    async def request(self, op: int, payload: bytes) -> bytes:
        commands = decode_commands(payload)
        self.sizes.append(len(commands))
        await asyncio.sleep(self.delay)
        return encode(Reply([Result(True) for _ in commands], 1, {}))


class FakeConnector:
    def __init__(self, link: FakeLink) -> None:
        self._link = link

    async def link(self, ch: Channel) -> Any:
        return self._link


def batches(link: FakeLink, linger: float = LINGER, calls_in_flight: int = 1) -> Batches:
    settings = dataclasses.replace(Settings(), batch_linger=linger, calls_in_flight=calls_in_flight)
    return Batches(settings, FakeConnector(link))  # type: ignore[arg-type]


def command(i: int) -> Command:
    return GetBooking(f"b{i}", "alice")


async def client(b: Batches, ch: Channel, first: int, rounds: int, think: float) -> None:
    """A closed-loop client: a request, its answer, a short think, the next request."""
    for i in range(rounds):
        await b.call(ch, command(first + i))
        await asyncio.sleep(think)


async def test_a_lone_request_is_sent_at_once() -> None:
    link = FakeLink(delay=0.001)
    b, ch = batches(link), Channel(make_route())
    started = time.perf_counter()
    for i in range(5):  # one client, back to back: never "under load"
        await b.call(ch, command(i))
    assert link.sizes == [1] * 5
    assert time.perf_counter() - started < LINGER


async def test_under_load_a_call_waits_until_as_many_have_queued_as_the_last_one_saw() -> None:
    link = FakeLink(delay=0.005)
    b, ch = batches(link), Channel(make_route())
    # four clients that come back 20 ms after each answer: without the gather, the call
    # that leaves while they think would carry whoever happens to be back
    await asyncio.gather(*(client(b, ch, 100 * k, 6, 0.02 * (k + 1) / 4) for k in range(4)))
    assert sum(link.sizes) == 24
    # after the first calls, every call carries all four: it waited for the stragglers
    assert link.sizes[-4:] == [4, 4, 4, 4], link.sizes


async def test_with_two_calls_in_flight_one_gathers_and_every_request_is_answered() -> None:
    link = FakeLink(delay=0.005)
    b, ch = batches(link, calls_in_flight=2), Channel(make_route())
    started = time.perf_counter()
    await asyncio.gather(*(client(b, ch, 100 * k, 6, 0.01 * (k + 1) / 4) for k in range(4)))
    assert sum(link.sizes) == 24
    assert 0 not in link.sizes, "a call that found its requests gone sent an empty batch"
    assert ch.gathering is None and ch.inflight == 0
    assert time.perf_counter() - started < 6 * (LINGER + 0.05)


async def test_the_wait_is_bounded_by_the_linger() -> None:
    link = FakeLink(delay=0.001)
    b, ch = batches(link, linger=0.05), Channel(make_route())
    gathered = _gather_seconds()
    # two answered together, then only one comes back: its call waits the linger, no more
    await asyncio.gather(b.call(ch, command(1)), b.call(ch, command(2)))
    started = time.perf_counter()
    await b.call(ch, command(3))
    waited = time.perf_counter() - started
    assert 0.04 <= waited < 0.05 + LINGER, waited
    assert link.sizes == [2, 1]
    # what operators see: the wait is in ticketd_batch_gather_seconds
    assert _gather_seconds()[0] == gathered[0] + 1
    assert _gather_seconds()[1] - gathered[1] >= 0.04


async def test_a_route_quiet_past_the_window_sends_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches_module, "_LOADED_SECONDS", 0.05)
    link = FakeLink(delay=0.001)
    b, ch = batches(link), Channel(make_route())
    await asyncio.gather(b.call(ch, command(1)), b.call(ch, command(2)))
    await asyncio.sleep(0.1)  # the route went quiet: the load it saw is forgotten
    started = time.perf_counter()
    await b.call(ch, command(3))
    assert time.perf_counter() - started < LINGER / 2
    assert link.sizes == [2, 1] and ch.expected == 0


def _gather_seconds() -> tuple[float, float]:
    def value(name: str) -> float:
        return metrics.REGISTRY.get_sample_value(name) or 0.0

    return value("ticketd_batch_gather_seconds_count"), value("ticketd_batch_gather_seconds_sum")


async def test_linger_zero_never_waits() -> None:
    link = FakeLink(delay=0.001)
    b, ch = batches(link, linger=0.0), Channel(make_route())
    await asyncio.gather(b.call(ch, command(1)), b.call(ch, command(2)))
    started = time.perf_counter()
    await b.call(ch, command(3))
    assert time.perf_counter() - started < 0.04

"""Full garbage collections stay off the hot path: what survives is frozen every second,
frozen cyclic garbage is collected by a full pass every few minutes (actors/heap.py)."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable, Iterator

import pytest
from support.actors import actor_config, create_route, route_actor, route_def

from actors import heap


class Node:
    """A container object the collector tracks, and a weak reference can watch."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def keeper() -> Iterator[heap.HeapKeeper]:
    kept = heap.HeapKeeper(freeze_every=0.02, full_every=3600)
    kept.start()
    yield kept
    kept.stop()  # the test process's objects go back to CPython's collector
    assert gc.get_freeze_count() == 0


def _frozen_after(made: Callable[[], object]) -> object:
    """What `made` returns, once the keeper has frozen it."""
    obj = made()
    before = gc.get_freeze_count()  # obj is young: the next freeze adds it to the count
    deadline = time.monotonic() + 5
    while gc.get_freeze_count() <= before:
        assert time.monotonic() < deadline, "nothing was frozen"
        time.sleep(0.01)
    return obj


def test_what_survives_is_frozen_and_freed_by_its_reference_count(
    keeper: heap.HeapKeeper,
) -> None:
    node = _frozen_after(Node)
    assert gc.get_freeze_count() > 0
    gone = weakref.ref(node)
    del node
    assert gone() is None  # no collection needed: nothing refers to it any more


def test_frozen_cyclic_garbage_waits_for_the_full_pass(keeper: heap.HeapKeeper) -> None:
    def cycle() -> Node:
        a, b = Node(), Node()
        a.other, b.other = b, a
        return a

    node = _frozen_after(cycle)
    gone = weakref.ref(node)
    del node
    gc.collect()  # CPython's own full collection never walks the frozen objects
    assert gone() is not None
    keeper.full_pass()
    assert gone() is None
    figures = keeper.figures()
    assert figures["full_passes"] == 1 and figures["last_collected"] >= 2
    assert figures["frozen"] > 0  # what was alive is frozen again


def test_the_keeper_runs_the_full_pass_by_itself() -> None:
    kept = heap.HeapKeeper(freeze_every=0.02, full_every=0.1)
    kept.start()
    try:
        deadline = time.monotonic() + 5
        while kept.full_passes < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert kept.full_passes >= 2
    finally:
        kept.stop()


def test_a_zero_period_leaves_cpython_s_collector_alone() -> None:
    assert heap.keep(0) is None
    with pytest.raises(ValueError, match="freeze_every"):
        heap.HeapKeeper(freeze_every=1.0, full_every=0.5)


@pytest.mark.usefixtures("ray_local")
@pytest.mark.parametrize("every", [1.0, 0.0])
async def test_a_route_actor_keeps_its_heap_frozen_unless_told_not_to(
    every: float, redis_url: str, route_id_factory: Callable[[], str]
) -> None:
    route = await create_route(redis_url, route_def(route_id_factory()))
    config = actor_config(redis_url, gc_freeze_seconds=every)
    async with route_actor(route.route_id, config) as handle:
        figures = (await handle.info.remote())["heap"]
        if every:
            # frozen at activation: modules, Ray's state, the recovered route
            assert figures["frozen"] > 10_000 and figures["full_passes"] == 0
        else:
            assert figures is None

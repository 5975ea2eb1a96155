"""Route placement (actors/placement.py) over a real Redis: balanced, deterministic, and
re-evaluated as nodes join and leave. The multi-node test shows it on real Ray nodes."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis.asyncio

from actors import placement as placement_module
from actors.placement import NODE_LABEL, Placement, preference
from actors.storage import keys

NODES = ["a" * 56, "b" * 56, "c" * 56]


def test_preference_is_deterministic_and_differs_between_routes() -> None:
    assert preference("G1-20261201", NODES) == preference("G1-20261201", list(reversed(NODES)))
    firsts = {preference(f"G{n}-20261201", NODES)[0] for n in range(30)}
    assert firsts == set(NODES), "every node is some route's first choice"


async def test_n_nodes_each_get_a_third_of_the_routes(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    placement = Placement(redis_url)
    try:
        chosen = [placement.choose(f"K{n}-20261201", NODES) for n in range(12)]
        assert Counter(chosen) == {node: 4 for node in NODES}
        # asking again for a route gives its node again (two front ends racing agree)
        assert [placement.choose(f"K{n}-20261201", NODES) for n in range(12)] == chosen
        assert await redis_client.hget(keys.PLACEMENT, "K0-20261201") == chosen[0].encode()
    finally:
        placement.close()


async def test_front_ends_choosing_at_once_still_spread(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    front_ends = [Placement(redis_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(8) as pool:
            chosen = list(
                pool.map(lambda n: front_ends[n % 4].choose(f"R{n}-20261201", NODES), range(30))
            )
        assert Counter(chosen) == {node: 10 for node in NODES}
    finally:
        for p in front_ends:
            p.close()


async def test_a_node_that_left_gets_nothing_and_one_that_joined_fills_up_first(
    redis_client: redis.asyncio.Redis, redis_url: str
) -> None:
    placement = Placement(redis_url)
    try:
        for n in range(6):
            placement.choose(f"L{n}-20261201", NODES[:2])
        # c joins: the next two activations go to it, then the three take turns
        joined = [placement.choose(f"J{n}-20261201", NODES) for n in range(2)]
        assert joined == [NODES[2]] * 2
        # a leaves (b holds 3, c 2): nothing new goes to it, c catches up first; a's
        # routes are placed again on the survivors
        after = [placement.choose(f"M{n}-20261201", NODES[1:]) for n in range(4)]
        assert after[0] == NODES[2] and Counter(after) == {NODES[1]: 2, NODES[2]: 2}
        stranded = [
            r
            for r in (f"L{n}-20261201" for n in range(6))
            if placement.choose(r, NODES) == NODES[0]
        ]
        assert stranded, "some L routes were on a"
        assert all(placement.choose(r, NODES[1:]) != NODES[0] for r in stranded)
    finally:
        placement.close()


def test_a_dead_nodes_routes_fall_back_to_different_survivors(
    redis_client: redis.asyncio.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ray restarts an actor with the options it was created with: after its chosen node,
    # the fallbacks name the route's other nodes in its own hash order, so the routes of a
    # dead node do not all restart on one survivor (a node starts only as many worker
    # processes at once as it has cores). alive_nodes is the GCS's list: four fake ids
    # stand in for a four-node Ray here; tests/cluster runs the real one.
    nodes = [*NODES, "d" * 56]
    monkeypatch.setattr(placement_module, "alive_nodes", lambda only=None: nodes)
    placement = Placement(redis_url)
    try:
        options = {f"F{n}-20261201": placement.options(f"F{n}-20261201") for n in range(24)}
    finally:
        placement.close()
    survivors: Counter[str] = Counter()
    for route_id, opts in options.items():
        chosen = opts["label_selector"][NODE_LABEL]
        then = [f["label_selector"][NODE_LABEL] for f in opts["fallback_strategy"]]
        assert then[-1] == f"!{chosen}", "at last any other node"
        assert sorted([*then[:-1], chosen]) == sorted(nodes), "every node, once"
        assert then[:-1] == [n for n in preference(route_id, nodes) if n != chosen]
        if chosen == nodes[0]:
            # where this route restarts when nodes[0] dies: its first other alive node
            survivors[then[0]] += 1
    assert len(survivors) == 3, f"nodes[0]'s routes fall back to every survivor: {survivors}"


def test_route_nodes_keep_actors_on_labelled_nodes_and_fall_back_to_any(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TICKETD_ROUTE_NODES: only nodes with the labels are chosen or named as fallbacks
    # before "any other node", which stays last: a route must run somewhere
    only = {"ticketd-routes": "yes"}
    gcs = [
        {"NodeID": "h" * 56, "Alive": True, "Labels": {"ray.io/node-id": "h" * 56}},
        {"NodeID": "a" * 56, "Alive": True, "Labels": {"ticketd-routes": "yes"}},
        {"NodeID": "b" * 56, "Alive": True, "Labels": {"ticketd-routes": "yes"}},
        {"NodeID": "c" * 56, "Alive": False, "Labels": {"ticketd-routes": "yes"}},
    ]
    monkeypatch.setattr(placement_module.ray, "nodes", lambda: gcs)
    assert placement_module.alive_nodes(only) == ["a" * 56, "b" * 56]
    assert placement_module.alive_nodes() == ["h" * 56, "a" * 56, "b" * 56]
    placement = Placement(redis_url, only)
    try:
        for n in range(8):
            opts = placement.options(f"N{n}-20261201")
            chosen = opts["label_selector"][NODE_LABEL]
            assert chosen in ("a" * 56, "b" * 56)
            last_two = [f["label_selector"] for f in opts["fallback_strategy"][-2:]]
            assert last_two == [{**only, NODE_LABEL: f"!{chosen}"}, {NODE_LABEL: f"!{chosen}"}]
        # none of the labelled nodes alive: the route starts anywhere
        monkeypatch.setattr(placement_module.ray, "nodes", lambda: gcs[:1])
        assert placement.options("N9-20261201") == {}
    finally:
        placement.close()

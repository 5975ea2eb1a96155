"""The lean slot-routed connections (actors/storage/slots.py) follow a Redis Cluster's
redirections on a real local Valkey Cluster: a slot moved to another primary (MOVED),
and a slot half-way through a migration (ASK)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from redis.crc import key_slot

from actors.storage import slots
from actors.storage.resp import pack
from actors.storage.valkey_cluster import LocalCluster, Node


@pytest.fixture
def cluster(valkey_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return valkey_cluster(replicas=0)


def _id(node: Node) -> str:
    return str(node.client().execute_command("CLUSTER", "MYID"))  # type: ignore[no-untyped-call]


def _first_primary_key(tag: str) -> str:
    """A key of the first primary's slots, with a hash tag other keys can share."""
    return next(k for k in (f"{{{tag}{n}}}" for n in range(1000))
                if key_slot(k.encode()) < 16384 // 3)  # fmt: skip


def _migrating(cluster: LocalCluster, key: str) -> tuple[Node, Node, int]:
    source, target = cluster.nodes[0], cluster.nodes[1]
    slot = key_slot(key.encode())
    target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", _id(source))  # type: ignore[no-untyped-call]
    source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _id(target))  # type: ignore[no-untyped-call]
    return source, target, slot


async def test_a_slot_moved_to_another_primary_is_followed(cluster: LocalCluster) -> None:
    links = slots.SlotLinks(cluster.url)
    key = _first_primary_key("moved")
    assert await links.run(key, [pack("SET", key, "kept")]) == [b"OK"]
    source, target, slot = _migrating(cluster, key)
    source.client().migrate("127.0.0.1", target.port, [key], 0, 5000)
    for node in cluster.nodes:
        node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", _id(target))  # type: ignore[no-untyped-call]
    # the map still says the first primary: it answers MOVED, and the link follows
    assert await links.run(key, [pack("GET", key)]) == [b"kept"]
    assert (await links.link(key)).url.endswith(f":{target.port}")
    links.close()


async def test_a_slot_half_way_through_a_migration_is_asked_of_its_target(
    cluster: LocalCluster,
) -> None:
    links = slots.SlotLinks(cluster.url)
    key = _first_primary_key("asked")
    await links.link(key)  # the map read before the migration starts
    source, target, slot = _migrating(cluster, key)
    # the key is not on the source: it answers ASK, and the command goes to the target
    assert await links.run(key, [pack("SET", key, "new")]) == [b"OK"]
    got = target.client().pipeline(transaction=False)
    got.execute_command("ASKING")  # type: ignore[no-untyped-call]
    got.get(key)
    assert got.execute() == [True, "new"]
    assert source.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0  # type: ignore[no-untyped-call]
    # MOVED and ASK are never raised to the caller; anything else is
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await links.run(key, [pack("LPUSH", key, "x")])
    links.close()

"""The local Valkey Cluster (actors/storage/valkey_cluster.py, `make cluster-redis`): 3
primaries with a replica each from the embedded server's binary, every slot served, a
write acknowledged by WAITAOF on a primary and its replica survives that primary's
machine (SIGKILL and its data directory deleted) once the replica is promoted."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from actors.storage.valkey_cluster import SLOTS, LocalCluster


@pytest.fixture
def cluster(valkey_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return valkey_cluster()


def _roles(node_line: str) -> tuple[str, str, str]:
    """(node id, 'master' or 'slave', its primary's id or '-') from a CLUSTER NODES line."""
    parts = node_line.split()
    flags = parts[2].split(",")
    return parts[0], "master" if "master" in flags else "slave", parts[3]


def test_three_primaries_serve_every_slot_each_with_a_replica(cluster: LocalCluster) -> None:
    client = cluster.nodes[0].client()
    info = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    assert "cluster_state:ok" in info and f"cluster_slots_assigned:{SLOTS}" in info
    lines = client.execute_command("CLUSTER", "NODES").splitlines()  # type: ignore[no-untyped-call]
    roles = [_roles(line) for line in lines]
    primaries = {nid for nid, role, _ in roles if role == "master"}
    replicas_of = [primary for _, role, primary in roles if role == "slave"]
    assert len(primaries) == 3 and sorted(replicas_of) == sorted(primaries)
    assert not any("fail" in line.split()[2] for line in lines)
    # keys of many hash tags land on every primary
    rc = redis.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port)
    try:
        for n in range(60):
            rc.set(f"ticketd:{{R{n}-20261201}}:probe", n)
    finally:
        rc.close()
    assert all(node.client().dbsize() > 0 for node in cluster.nodes[:3])


def test_a_write_waitaof_confirmed_survives_its_primary_s_machine(
    cluster: LocalCluster,
) -> None:
    primary = cluster.nodes[0]
    replica = cluster.nodes[3]  # replicates nodes[0]
    rc = redis.RedisCluster(host="127.0.0.1", port=primary.port)
    try:
        key = next(k for k in (f"{{t{n}}}:booked" for n in range(1000))
                   if rc.keyslot(k) < SLOTS // 3)  # fmt: skip
        rc.set(key, "acknowledged")
        # on the primary's AOF and the replica's before anyone is told "yes"
        confirmed = primary.client().execute_command("WAITAOF", 1, 1, 2000)  # type: ignore[no-untyped-call]
        assert confirmed == [1, 1]
    finally:
        rc.close()
    cluster.kill(primary, lose_data=True)  # the machine is gone, disk and all
    deadline = time.monotonic() + 15
    while True:
        try:
            role = replica.client().info("replication")["role"]
        except redis.RedisError:
            role = "?"
        if role == "master":
            break
        assert time.monotonic() < deadline, "the replica was not promoted within 15 s"
        time.sleep(0.2)
    assert replica.client().get(key) == "acknowledged"

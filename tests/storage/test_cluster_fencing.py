"""Fencing across a failover on a real local Valkey Cluster (issue 23).

A promoted replica may lack its old primary's last writes. With TICKETD_REDIS_REPLICAS=1
an activation's epoch and every acknowledged append were confirmed in a replica's AOF
(WAITAOF) first, so after the primary's machine is lost (SIGKILL, data deleted): the
superseded activation is still fenced, the acknowledged append is on the promoted replica,
and the current activation appends again once the cluster has moved on.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
import redis
from redis.crc import key_slot
from test_journal import batch, held

from actors.storage import journal, keys, topology
from actors.storage.journal import Fenced, Journal
from actors.storage.slots import Unreplicated
from actors.storage.valkey_cluster import SLOTS, LocalCluster

FAILOVER_WITHIN = 15.0


@pytest.fixture
def cluster(valkey_cluster: Callable[..., LocalCluster]) -> LocalCluster:
    return valkey_cluster(spares=1)


def _route_on_first_primary() -> str:
    return next(r for r in (f"Z{n}-20261201" for n in range(1000))
                if key_slot(keys.journal(r).encode()) < SLOTS // 3)  # fmt: skip


async def _until(what: str, attempt: object) -> object:
    """attempt() once it stops raising a Redis error (the cluster moving on)."""
    deadline = time.monotonic() + FAILOVER_WITHIN
    while True:
        try:
            return await attempt()  # type: ignore[operator]
        except (redis.RedisError, OSError) as exc:
            assert time.monotonic() < deadline, f"{what}: still {exc!r}"
            time.sleep(0.2)


async def test_after_a_failover_the_superseded_activation_is_fenced_and_nothing_acked_is_lost(
    cluster: LocalCluster,
) -> None:
    route = _route_on_first_primary()
    sync = topology.sync_client(cluster.url)
    old = Journal.open(cluster.url, route, journal.activate(sync, route, 1), replicas=1)
    acked = await old.append(batch(0))  # confirmed in a replica's AOF
    new = Journal.open(cluster.url, route, journal.activate(sync, route, 1), replicas=1)
    cluster.kill(cluster.nodes[0], lose_data=True)  # the first primary's machine is gone

    async def zombie_append() -> str:
        try:
            return await old.append(batch(1))
        except Fenced:
            return "fenced"

    assert await _until("the superseded activation", zombie_append) == "fenced"
    assert await _until("the current activation", lambda: new.append(batch(2)))
    stored = journal.load(sync, route)
    assert next(stored.events()) == (acked, [held(0)])
    assert [e for _, e in stored.events()] == [[held(0)], [held(2)]]
    sync.close()


def _replicas_of_first(cluster: LocalCluster) -> list[int]:
    first = cluster.nodes[0].client().execute_command("CLUSTER", "MYID")  # type: ignore[no-untyped-call]
    lines = cluster.nodes[0].client().execute_command("CLUSTER", "NODES").splitlines()  # type: ignore[no-untyped-call]
    ports = [int(ln.split()[1].split("@")[0].rsplit(":", 1)[1]) for ln in lines
             if ln.split()[3] == first]  # fmt: skip
    return [n.proc.pid for n in cluster.nodes if n.port in ports and n.proc is not None]


async def test_an_epoch_no_replica_confirmed_is_not_an_activation(cluster: LocalCluster) -> None:
    # the replicas frozen: a failover now could bring back the older epoch, so the new
    # activation must not count (WAITAOF times out) rather than race a zombie
    route = _route_on_first_primary()
    sync = topology.sync_client(cluster.url)
    journal.activate(sync, route, 1)
    frozen = _replicas_of_first(cluster)
    assert len(frozen) == 2
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(Unreplicated, match="reached the AOF of 0 of the 1 replicas"):
            journal.activate(sync, route, 1)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        sync.close()

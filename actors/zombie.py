"""An activation left behind on a node the cluster gave up on exits by itself.

A node that froze (a VM stall, a long GC pause, a partition) is declared dead by the
GCS, and its route actors are restarted elsewhere with newer epochs. When it wakes, its
old actors are still running: fencing already refuses every write they try (journal
epochs), but they would linger, holding memory and a Ray worker, until their raylet
notices. This watch makes them go at once: a newer epoch in Redis *and* our node dead
in the GCS means no one will ever call this activation again.
"""

from __future__ import annotations

import asyncio
import os

import ray
import redis
import redis.asyncio as aredis
import structlog

from actors.storage import keys

log = structlog.get_logger("ticketd.actor")

#: how often an actor compares its epoch with Redis's (one GET per route per interval)
CHECK_SECONDS = 1.0


def node_dead(node_id: str) -> bool:
    """Whether the GCS holds this node dead (blocking: a GCS round trip)."""
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    return not any(n["NodeID"] == node_id and n.get("Alive") for n in nodes)


async def exit_when_superseded(
    client: aredis.Redis, route_id: str, epoch: int, node_id: str
) -> None:
    """Run for the activation's lifetime; os._exit once it is a zombie on a dead node."""
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        try:
            current = int(await client.get(keys.epoch(route_id)) or 0)
        except (redis.RedisError, OSError, ValueError):
            continue  # Redis away: nothing to learn now
        if current <= epoch:
            continue
        try:
            dead = await asyncio.to_thread(node_dead, node_id)
        except Exception:  # the GCS unreachable: ask again next turn
            continue
        if dead:
            # not ray.kill(): the actor id is shared with the live successor, and killing
            # it through the GCS would take the successor down instead of this process
            log.warning(
                "superseded activation on a dead node exits",
                route_id=route_id,
                epoch=epoch,
                newer_epoch=current,
                node_id=node_id,
            )
            os._exit(0)

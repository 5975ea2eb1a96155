"""What a route actor needs to know, passed to it by the front end that creates it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

#: Ray namespace holding every route actor, so all front ends find the same ones
NAMESPACE = "ticketd"


@dataclass(frozen=True, slots=True)
class ActorConfig:
    redis_url: str
    hold_seconds: float = 600.0
    user_cap: int = 5
    #: write a snapshot after this many journalled events, bounding recovery time
    snapshot_every: int = 2000
    #: how often the actor looks for holds past their deadline
    sweep_interval: float = 0.25
    #: deactivate after this long without calls (0: never); state stays in Redis
    idle_seconds: float = 0.0
    #: a Redis write that takes longer than this fails the batch (answered unavailable)
    write_timeout: float = 5.0
    #: an append counts once this many replicas have it in their AOF (WAITAOF; the
    #: setting TICKETD_REDIS_REPLICAS); 0: the primary's own fsync'd AOF
    redis_replicas: int = 0
    #: every node ("host:port") of the Redis Cluster redis_url names, () for one server
    #: (actors/storage/topology.py): an actor started after that node died still finds it
    redis_nodes: tuple[str, ...] = ()
    #: HMAC key every data-plane connection must prove it knows (TICKETD_CLUSTER_SECRET).
    #: It travels in the actor's creation arguments, i.e. inside Ray's GCS, which only
    #: holders of the cluster's Ray token reach (and they can run code on it anyway).
    plane_secret: str = field(default="", repr=False)
    #: the actor process's niceness where the OS allows it (root, or CAP_SYS_NICE; else
    #: Ray's 15 for its workers stays). A route's actor is the one serial step of its
    #: sales: every wake-up it spends queued behind front-end or load-generator work
    #: delays a whole batch (docs/benchmarks.md).
    niceness: int = -5
    #: freeze the actor's heap this often (actors/heap.py); 0: CPython's own collector
    gc_freeze_seconds: float = 1.0

    def apply_niceness(self) -> None:
        """Run this process, every thread of it, at `niceness`, if allowed."""
        # Linux keeps a niceness per thread, and Ray starts its workers at 15 (below
        # everything else on the node) with threads of their own already running
        try:
            threads = [int(t) for t in os.listdir("/proc/self/task")]
        except OSError:  # not Linux: the process
            threads = [0]
        for tid in threads:
            with contextlib.suppress(OSError):  # not permitted: Ray's priority stands
                os.setpriority(os.PRIO_PROCESS, tid, self.niceness)

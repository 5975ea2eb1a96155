"""Injects a schedule's faults into a Deployment at their times, and files what it did."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import Sequence
from typing import Any

from loadgen.nemesis.deployment import Deployment, cmdline, signal_all
from loadgen.nemesis.schedule import Fault
from loadgen.nemesis.verdict import Done

#: how long a front end may take to have all its workers again after one was killed
REPLACE_TIMEOUT = 60.0
#: a lost or frozen node is replaced (what an autoscaler does) this long after the fault
REPLACE_NODE_AFTER = 3.0


#: how long a kill waits for a target that is coming back (s)
_TARGET_WAIT_SECONDS = 10.0


class Nemesis:
    """Runs `faults` against `dep`; times are seconds since `t0` (a loop time)."""

    def __init__(self, dep: Deployment, faults: Sequence[Fault], t0: float, say: Any) -> None:
        self.dep = dep
        self.faults = faults
        self.t0 = t0
        self.say = say
        self.done: list[Done] = []
        self._busy_nodes: set[str] = set()
        self._paused: set[int] = set()
        self._loop = asyncio.get_running_loop()
        self._after: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return round(self._loop.time() - self.t0, 3)

    async def run(self) -> None:
        tasks = []
        for f in self.faults:
            await asyncio.sleep(max(0.0, self.t0 + f.at - self._loop.time()))
            tasks.append(asyncio.create_task(self._one(f)))
        await asyncio.gather(*tasks)
        await asyncio.gather(*self._after)

    async def _one(self, f: Fault) -> None:
        rnd = random.Random(f.pick)
        started = self.now()
        try:
            target, extra = await getattr(self, "_" + f.kind.replace("-", "_"))(f, rnd)
        except NoTarget as why:
            self.done.append(Done(n=f.n, kind=f.kind, target="", started=started,
                                  ended=started, skipped=str(why)))  # fmt: skip
            self.say(f"  t={started:7.2f}  fault {f.n:3d} {f.kind:11s} skipped: {why}")
            return
        ended = self.now() if f.pause else started
        done = Done(n=f.n, kind=f.kind, target=target, started=started, ended=ended, **extra)
        self.done.append(done)
        pause = f" paused {ended - started:.2f} s" if f.pause else ""
        self.say(f"  t={started:7.2f}  fault {f.n:3d} {f.kind:11s} {target}{pause}")

    # ---- one per kind: (target, extra Done fields) ---------------------------------------

    async def _redis_kill(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        pid = self.dep.redis_pid()
        if pid is None:
            raise NoTarget("Redis is not running (restarting)")
        signal_all([pid], signal.SIGKILL)
        return f"redis pid {pid}", {}

    async def _redis_pause(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        pid = self.dep.redis_pid()
        if pid is None or pid in self._paused:
            raise NoTarget("Redis is not running or already paused")
        await self._pause([pid], f.pause, lambda: self.dep.redis_pid() == pid)
        return f"redis pid {pid}", {}

    async def _actor_kill(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        # right after a node was killed its actors may still be restarting (a worker's
        # imports take seconds on a busy machine): wait a little for one
        deadline = self._loop.time() + _TARGET_WAIT_SECONDS
        while True:
            actors = await asyncio.to_thread(self.dep.route_actors)
            live = [p for p in actors if p not in self._paused]
            if live:
                break
            if self._loop.time() > deadline:
                raise NoTarget("no route actor running")
            await asyncio.sleep(0.5)
        pid = rnd.choice(live)
        signal_all([pid], signal.SIGKILL)
        return f"route actor pid {pid}", {}

    async def _fe_kill(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        workers = [p for p in self.dep.front_end_workers() if p not in self._paused]
        if len(workers) < 2:
            raise NoTarget("fewer than two front-end workers serving")
        pid = rnd.choice(workers)
        ready = self.dep.workers_ready()
        killed = time.monotonic()
        signal_all([pid], signal.SIGKILL)
        task = asyncio.create_task(self._replaced(f, ready, killed))
        self._after.add(task)
        return f"front-end worker pid {pid}", {}

    async def _replaced(self, f: Fault, ready: int, killed: float) -> None:
        """Note when the killed worker's replacement serves (it logs "ticketd ready")."""
        while time.monotonic() - killed < REPLACE_TIMEOUT:
            if self.dep.workers_ready() > ready:
                took = round(time.monotonic() - killed, 2)
                for d in self.done:
                    if d.n == f.n:
                        d.replaced_after = took
                return
            await asyncio.sleep(0.1)

    async def _fe_pause(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        workers = [p for p in self.dep.front_end_workers() if p not in self._paused]
        if len(workers) < 2:
            raise NoTarget("fewer than two front-end workers serving")
        pid = rnd.choice(workers)
        await self._pause([pid], f.pause, lambda: True)
        return f"front-end worker pid {pid}", {}

    async def _free_node(self, rnd: random.Random) -> tuple[Any, list[int], int]:
        """A worker node no other fault holds, one that runs route actors if any does (a
        node with none would test nothing); its processes and how many are actors."""
        nodes = [n for n in self.dep.worker_nodes() if n.node_id not in self._busy_nodes]
        if not nodes:
            raise NoTarget("no worker node free of faults")
        found = await asyncio.to_thread(lambda: [self.dep.node_processes(n) for n in nodes])
        actors = [sum(cmdline(p).startswith("ray::RouteActor") for p in ps) for ps in found]
        choices = [i for i, a in enumerate(actors) if a] or list(range(len(nodes)))
        i = rnd.choice(choices)
        self._busy_nodes.add(nodes[i].node_id)
        return nodes[i], found[i], actors[i]

    async def _node_kill(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        node, pids, actors = await self._free_node(rnd)
        signal_all(pids, signal.SIGKILL)
        self._later_replace(node)
        return f"node {node.node_id[:12]} ({len(pids)} processes, {actors} route actors)", {}

    async def _node_pause(self, f: Fault, rnd: random.Random) -> tuple[str, dict[str, Any]]:
        node, pids, actors = await self._free_node(rnd)
        await self._pause(pids, f.pause, lambda: True)
        # declared dead while frozen: its raylet exits on waking, its actors are fenced
        self._later_replace(node)
        return f"node {node.node_id[:12]} ({len(pids)} processes, {actors} route actors)", {}

    # ---- helpers ------------------------------------------------------------------------

    async def _pause(self, pids: list[int], seconds: float, still: Any) -> None:
        self._paused.update(pids)
        signal_all(pids, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            if still():  # a pid that died meanwhile may have been reused: leave it alone
                signal_all(pids, signal.SIGCONT)
            self._paused.difference_update(pids)

    def _later_replace(self, node: Any) -> None:
        async def replace() -> None:
            await asyncio.sleep(REPLACE_NODE_AFTER)
            await asyncio.wrap_future(self.dep.replace_node(node))

        task = asyncio.create_task(replace())
        self._after.add(task)


class NoTarget(Exception):
    """Nothing of the fault's kind to hit at the moment (e.g. every node already down)."""

"""Lean connections to a Redis Cluster's primaries, chosen by hash slot.

The cluster form of `resp.LeanLink`, for a route actor's appends and its read models'
writes (actors/storage/projection.py). It keeps the map of slots to primaries
(`CLUSTER SLOTS`) and one lean connection per primary, and follows the cluster:

- `MOVED` (the slot has another primary: a failover, a resharding): the map is read
  again and the command sent where it now belongs. It did not run, so this is safe for
  any command.
- `ASK` (the slot is being migrated): the command goes once to the target, after
  `ASKING`.
- `TRYAGAIN`, `CLUSTERDOWN` (a failover under way): tried again shortly.
- a lost connection: the map is dropped and read again, from any node still known, on
  the next call. The command may or may not have run, so it is raised, not retried here:
  an append answers "unavailable" and its actor rebuilds from Redis; an idempotent write
  (`write_many`) is retried by its caller.

`WAITAOF numlocal numreplicas timeout` after a write, on the same connection, holds the
answer until the write is in the AOF of the primary and of `replicas` of its replicas
(Redis ≥ 7.2, Valkey); fewer in time raises `Unreplicated`. It is preceded by a `WAIT`
(`replica_wait`): alone, WAITAOF takes a second here (Valkey 9.1). A blocked WAITAOF has
the primary ask its replicas for their offsets at once, but a replica answers before
it fsyncs what it just received, and says so again only in its once-a-second report.
The WAIT spends that first round (the replicas have the write); when WAITAOF then asks,
they have fsynced it: 1 ms instead of 1 s, measured (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Sequence
from typing import Any

import redis
from redis.asyncio.connection import parse_url
from redis.crc import key_slot
from redis.exceptions import ClusterDownError

from actors.storage import topology
from actors.storage.resp import LeanLink, RespConnection, pack

#: how often a redirection or a cluster-down answer is followed before giving up
_ATTEMPTS = 8


class Unreplicated(redis.TimeoutError):
    """A write reached fewer replicas' AOF than asked in time: it may still be lost in a
    failover, so it is not acknowledged (it may or may not be kept)."""


def replica_wait(replicas: int, timeout_ms: int) -> list[tuple[str | int, ...]]:
    """What follows a write on its connection to confirm it in the AOF of `replicas`
    replicas: WAIT, then WAITAOF (see the module); `check_replicated` reads the last
    reply."""
    return [("WAIT", replicas, timeout_ms), ("WAITAOF", 1, replicas, timeout_ms)]


def packed_wait(replicas: int, timeout_ms: int) -> list[bytes]:
    """`replica_wait` packed for a lean connection; nothing when replicas is 0."""
    return [pack(*c) for c in replica_wait(replicas, timeout_ms)] if replicas else []


def check_replicated(reply: Any, replicas: int) -> None:
    """Raise Unreplicated unless a WAITAOF reply counts `replicas` replicas."""
    local, copies = int(reply[0]), int(reply[1])
    if local < 1 or copies < replicas:
        raise Unreplicated(
            f"the write reached the AOF of {copies} of the {replicas} replicas asked in time"
        )


class SlotLinks:
    """One lean connection per primary of the cluster `url` names, by hash slot."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opts = parse_url(url)
        self._starts: list[int] = []  # sorted first slots of the ranges
        self._ranges: list[tuple[int, int, str]] = []  # (first, last, primary address)
        self._links: dict[str, LeanLink] = {}
        self._reading = asyncio.Lock()

    def _url_of(self, host: str, port: int) -> str:
        auth = ""
        if self._opts.get("password"):
            user = self._opts.get("username") or ""
            auth = f"{user}:{self._opts['password']}@"
        return f"redis://{auth}{host}:{port}"

    async def refresh(self) -> None:
        """Read the slot map again, from the first known node that answers."""
        async with self._reading:
            last: Exception | None = None
            for host, port in topology.known_nodes(self.url):
                try:
                    conn = await RespConnection.connect(self._url_of(host, port), timeout=2.0)
                except (redis.RedisError, OSError, TimeoutError) as exc:
                    last = exc
                    continue
                try:
                    async with asyncio.timeout(2.0):
                        slots = await conn.call(pack("CLUSTER", "SLOTS"))
                except (redis.RedisError, OSError, TimeoutError) as exc:
                    last = exc
                    continue
                finally:
                    conn.close()
                self._load(slots)
                return
            raise redis.ConnectionError(f"no node of the Redis Cluster answers: {last!r}")

    def _load(self, slots: list[Any]) -> None:
        ranges: list[tuple[int, int, str]] = []
        seen: list[tuple[str, int]] = []
        here = str(self._opts.get("host", "localhost"))  # a node that met none says ""
        for first, last, primary, *replicas in slots:
            for node in (primary, *replicas):
                seen.append((node[0].decode() or here, int(node[1])))
            host, port = primary[0].decode() or here, int(primary[1])
            ranges.append((int(first), int(last), self._url_of(host, port)))
        ranges.sort()
        self._ranges, self._starts = ranges, [r[0] for r in ranges]
        topology.remember(self.url, seen)

    async def link(self, key: str) -> LeanLink:
        """The connection to the primary serving key's slot (map read if needed)."""
        if not self._ranges:
            await self.refresh()
        slot = key_slot(key.encode())
        at = bisect.bisect_right(self._starts, slot) - 1
        if at < 0 or not self._ranges[at][0] <= slot <= self._ranges[at][1]:
            raise ClusterDownError(f"no primary serves hash slot {slot}")
        return self._node(self._ranges[at][2])

    def _node(self, address: str) -> LeanLink:
        link = self._links.get(address)
        if link is None:
            link = self._links[address] = LeanLink(address)
        return link

    def forget(self) -> None:
        """Drop the map (a connection was lost): the next call reads it again."""
        self._ranges, self._starts = [], []

    async def run(self, key: str, commands: Sequence[bytes]) -> list[Any]:
        """Send commands (all in key's slot) to its primary in one write; their replies.

        Redirections and cluster-down answers are followed (the commands did not run); a
        lost connection is raised (they may have run)."""
        asking = False
        target: LeanLink | None = None
        for attempt in range(_ATTEMPTS):
            link = target or await self.link(key)
            sent = [pack("ASKING"), *commands] if asking else list(commands)
            try:
                conn = await link.connection()
                replies = await conn.pipeline(sent)
            except redis.ResponseError as exc:
                word, _, rest = str(exc).partition(" ")
                asking, target = False, None
                if word == "MOVED":
                    await self.refresh()
                elif word == "ASK":
                    asking, target = True, self._node(self._ask_target(rest))
                elif word in ("TRYAGAIN", "CLUSTERDOWN"):
                    await asyncio.sleep(0.05 * (attempt + 1))
                    await self.refresh()
                else:
                    raise
                continue
            except (redis.ConnectionError, OSError):
                self.forget()
                raise
            return replies[1:] if asking else replies
        raise ClusterDownError(f"the slot of {key!r} kept moving: gave up")

    def _ask_target(self, rest: str) -> str:
        # "ASK <slot> <host>:<port>"
        host, _, port = rest.split(" ", 1)[1].rpartition(":")
        return self._url_of(host, int(port))

    async def evalsha(
        self,
        sha: str,
        script: str,
        keys: Sequence[str],
        args: Sequence[bytes | str | int],
        after: Sequence[bytes] = (),
    ) -> list[Any]:
        """The script on its keys' primary (by text if it forgot it: a promoted replica
        has no script cache), then `after` (a WAITAOF, say) on the same connection; every
        reply."""
        try:
            return await self.run(keys[0], [pack("EVALSHA", sha, len(keys), *keys, *args), *after])
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            return await self.run(keys[0], [pack("EVAL", script, len(keys), *keys, *args), *after])

    def close(self) -> None:
        for link in self._links.values():
            link.close()
        self._links.clear()


async def write_many(
    links: SlotLinks, writes: Sequence[tuple[str, bytes]], after: Sequence[bytes] = ()
) -> list[list[Any]]:
    """Idempotent writes, (key, packed command) each, sent to their keys' primaries: one
    pipeline per primary, ending with `after`; every pipeline's replies.

    Written again from scratch after a redirection or a lost connection (they are
    idempotent), regrouped by the map read again, until `_ATTEMPTS` tries are spent."""
    last: Exception | None = None
    for attempt in range(_ATTEMPTS):
        groups: dict[str, list[bytes]] = {}
        first: dict[str, str] = {}
        for key, command in writes:
            address = (await links.link(key)).url
            groups.setdefault(address, []).append(command)
            first.setdefault(address, key)
        try:
            return list(await asyncio.gather(
                *(links.run(first[a], [*cmds, *after]) for a, cmds in groups.items())
            ))  # fmt: skip
        except (redis.ConnectionError, ClusterDownError, OSError) as exc:
            last = exc
            links.forget()
        except redis.ResponseError as exc:
            if not str(exc).startswith(("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN")):
                raise
            last = exc
            links.forget()
        await asyncio.sleep(0.1 * (attempt + 1))
    raise redis.ConnectionError(f"the read models could not be written: {last!r}")

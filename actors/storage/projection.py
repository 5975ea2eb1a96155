"""The read models a route's journal feeds that live outside the route's hash slot.

A user's bookings (`keys.user_bookings`, `keys.user_records`) and the index of routes
with live holds (`keys.HOLDS`) belong to users and to the whole system, not to one
route. On one Redis server the append script writes them with the journal entry, in the
same atomic step (actors/storage/journal.py). On a Redis Cluster a script touches one
hash slot, so there they are a projection of the journal, written by the route's actor:

- **after each append**, once it is confirmed, and **before the batch is answered**:
  the latest record of every booking the batch changed, and the route's next hold
  deadline. So "my bookings" right after a booking shows it, as on one server. With
  `TICKETD_REDIS_REPLICAS=N` each primary written confirms it with `WAITAOF 1 N`, as the
  append does. If this write fails, the batch answers "unavailable" (its bookings are
  journalled: a retry with the same Idempotency-Key gets them) and the actor rebuilds;
- **at every activation and rebuild**: every booking of the route, from the state just
  recovered from the journal. An actor that died between its append and this write,
  or a failover that lost a primary's un-replicated tail (`TICKETD_REDIS_REPLICAS=0`),
  leaves nothing missing once the route's actor is active again.

Every write is idempotent (the latest record of a booking, a sorted-set member, the
route's deadline), so writing again is always safe.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from actors.domain.state import RouteState, next_deadline
from actors.domain.views import Record, record
from actors.storage import keys, slots
from actors.storage.formats import encode_record, member
from actors.storage.resp import pack

Command = tuple[str | bytes | float, ...]


def writes_of(route_id: str, records: Iterable[Record], deadline: float | None
              ) -> list[Command]:  # fmt: skip
    """The read models' writes for these records and the route's next hold deadline, as
    commands whose second word is their key."""
    out: list[Command] = []
    for rec in records:
        out.append(("ZADD", keys.user_bookings(rec.user), 0.0, member(rec)))
        out.append(("HSET", keys.user_records(rec.user), rec.booking_id, encode_record(rec)))
    if deadline is None:
        out.append(("ZREM", keys.HOLDS, route_id))
    else:
        out.append(("ZADD", keys.HOLDS, deadline, route_id))
    return out


async def project(links: slots.SlotLinks, route_id: str, records: list[Record],
                  deadline: float | None, replicas: int, wait_ms: int) -> None:  # fmt: skip
    """Write a confirmed batch's read models (see the module); raises a Redis error, or
    slots.Unreplicated if fewer than `replicas` replicas confirmed them in time."""
    after = slots.packed_wait(replicas, wait_ms)
    writes = [(str(c[1]), pack(*c)) for c in writes_of(route_id, records, deadline)]
    replies = await slots.write_many(links, writes, after)
    if replicas:
        for group in replies:
            slots.check_replicated(group[-1], replicas)


def project_all(client: redis.Redis, route_id: str, state: RouteState) -> int:
    """Write every booking of a recovered route, and its deadline (sync, for activation
    and rebuilds; the client a cluster client). Returns how many bookings."""
    records = [record(b) for b in state.bookings.values()]
    pipe = client.pipeline(transaction=False)
    for command in writes_of(route_id, records, next_deadline(state)):
        pipe.execute_command(*command)  # type: ignore[no-untyped-call]
    pipe.execute()
    return len(records)

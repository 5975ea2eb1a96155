"""The fenced journal and snapshots against a real Redis: appends, fencing, trimming, paging."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from actors.domain.messages import Confirmed, Held, Passenger, encode
from actors.domain.views import Record
from actors.storage import formats, journal, keys
from actors.storage.formats import is_member
from actors.storage.journal import Fenced, Journal, JournalCorrupt
from actors.storage.read_side import UserIndex

ROUTE = "J1-20261201"


@pytest.fixture
def sync_client(redis_client: redis.asyncio.Redis, redis_url: str) -> Iterator[redis.Redis]:
    """A sync client on the same (already flushed) database, as recovery uses."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def held(n: int) -> Held:
    """A realistic Held event for booking n."""
    return Held(
        f"b{n}", f"u{n}", f"k{n}", "fp", 0, 2, "second", [n], [Passenger("name", f"p{n}")],
        1000.0 + n, 1600.0 + n, [], False,
    )  # fmt: skip


def batch(n: int) -> bytes:
    return encode([held(n)])


def activated(sync_client: redis.Redis, redis_client: redis.asyncio.Redis) -> Journal:
    return Journal(redis_client, ROUTE, journal.activate(sync_client, ROUTE))


def test_activate_takes_a_new_higher_epoch_each_time(sync_client: redis.Redis) -> None:
    first = journal.activate(sync_client, ROUTE)
    second = journal.activate(sync_client, ROUTE)
    assert second == first + 1
    assert int(sync_client.get(keys.epoch(ROUTE)) or 0) == second


async def test_append_returns_increasing_ids_and_load_returns_the_batches_in_order(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    writer = activated(sync_client, redis_client)
    ids = [await writer.append(batch(n)) for n in range(3)]
    assert all(isinstance(i, str) for i in ids)
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == 3
    stored = journal.load(sync_client, ROUTE)
    assert stored.snapshot is None
    assert stored.snapshot_last_id == "0-0"
    assert [(i, events) for i, events in stored.events()] == [(ids[n], [held(n)]) for n in range(3)]


async def test_append_of_a_superseded_activation_raises_fenced_and_writes_nothing(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    old = activated(sync_client, redis_client)
    await old.append(batch(0))
    new = activated(sync_client, redis_client)
    with pytest.raises(Fenced):
        await old.append(batch(1))
    assert await redis_client.xlen(keys.journal(ROUTE)) == 1
    await new.append(batch(1))
    assert [e for _, e in journal.load(sync_client, ROUTE).events()] == [[held(0)], [held(1)]]


async def test_append_refuses_when_the_epoch_key_is_gone(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    # a lost epoch (flushed, or a fresh Redis) must not let an old activation write
    writer = activated(sync_client, redis_client)
    await redis_client.delete(keys.epoch(ROUTE))
    with pytest.raises(Fenced):
        await writer.append(batch(0))
    assert await redis_client.exists(keys.journal(ROUTE)) == 0


async def test_snapshot_trims_entries_it_covers_and_load_returns_only_the_tail(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    writer = activated(sync_client, redis_client)
    ids = [await writer.append(batch(n)) for n in range(5)]
    await writer.write_snapshot(b"state-after-3", ids[2])
    # entries before the covered one are gone; at most the covered entry itself remains
    remaining = [i.decode() for i, _ in await redis_client.xrange(keys.journal(ROUTE))]
    assert remaining[-2:] == ids[3:]
    assert set(remaining) <= set(ids[2:])
    stored = journal.load(sync_client, ROUTE)
    assert stored.snapshot == b"state-after-3"
    assert stored.snapshot_last_id == ids[2]
    assert [i for i, _ in stored.entries] == ids[3:]
    assert await redis_client.hget(keys.snapshot(ROUTE), "epoch") == str(writer.epoch).encode()


async def test_snapshot_of_a_superseded_activation_raises_fenced_and_changes_nothing(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    old = activated(sync_client, redis_client)
    ids = [await old.append(batch(n)) for n in range(3)]
    activated(sync_client, redis_client)
    with pytest.raises(Fenced):
        await old.write_snapshot(b"stale", ids[2])
    assert await redis_client.exists(keys.snapshot(ROUTE)) == 0
    assert await redis_client.xlen(keys.journal(ROUTE)) == 3


@pytest.mark.parametrize("entries", [7, 9, 3])
async def test_load_pages_past_the_page_size_without_losing_or_repeating_entries(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis, entries: int
) -> None:
    writer = activated(sync_client, redis_client)
    ids = [await writer.append(batch(n)) for n in range(entries)]
    # 7 and 9 span several pages (9 ends exactly on a page boundary); 3 fills just one
    stored = journal.load(sync_client, ROUTE, page=3)
    assert [i for i, _ in stored.entries] == ids
    assert [e for _, e in stored.events()] == [[held(n)] for n in range(entries)]


async def test_load_pages_from_the_snapshot_onwards(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    writer = activated(sync_client, redis_client)
    ids = [await writer.append(batch(n)) for n in range(10)]
    await writer.write_snapshot(b"snap", ids[3])
    stored = journal.load(sync_client, ROUTE, page=2)
    assert [i for i, _ in stored.entries] == ids[4:]


async def test_undecodable_entry_raises_journal_corrupt_naming_the_entry(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    writer = activated(sync_client, redis_client)
    good = await writer.append(batch(0))
    bad = (await redis_client.xadd(keys.journal(ROUTE), {"e": b"\xc1garbage"})).decode()
    stored = journal.load(sync_client, ROUTE)
    events = stored.events()
    assert next(events) == (good, [held(0)])
    with pytest.raises(JournalCorrupt, match=bad):
        next(events)


async def test_well_formed_msgpack_of_the_wrong_shape_is_corrupt_too(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xadd(keys.journal(ROUTE), {"e": encode([Confirmed("b1", 1.0), 42])})
    with pytest.raises(JournalCorrupt):
        list(journal.load(sync_client, ROUTE).events())


async def test_entry_without_events_field_raises_journal_corrupt_on_load(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.xadd(keys.journal(ROUTE), {"x": b"1"})
    with pytest.raises(JournalCorrupt, match="no events field"):
        journal.load(sync_client, ROUTE)


# ---- what the append also stores for buyer reads (stored availability, users' lists) -----


def _record(n: int, user: str, status: str = "held") -> Record:
    # ids shaped as the front end makes them (the user list keeps only such ids)
    return Record(f"{ROUTE}-{n:024x}", status, 0, 2, "second", [n], 1600.0 + n, 1000.0 + n,
                  user, [Passenger("name", f"p{n}")])  # fmt: skip


async def test_append_stores_availability_and_booking_records_in_the_same_script(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    writer = activated(sync_client, redis_client)
    # names with the separator of the script's fields in them, and bytes of every value
    users = ["alice", "b:o:b", "7:x", "ünï"]
    records = [_record(n, users[n % len(users)]) for n in range(9)]
    stored = formats.encode_availability(writer.epoch << 32 | 1, {"second": [3, 2, 1]})
    await writer.append(batch(0), None, availability=stored, records=records)
    raw = await redis_client.get(keys.availability(ROUTE))
    assert formats.decode_availability(raw) == formats.StoredAvailability(
        writer.epoch << 32 | 1, {"second": [3, 2, 1]}
    )
    index = UserIndex(redis_client)
    for user in users:
        mine = [r for r in records if r.user == user]
        page, after = await index.page(user, None, 100)
        assert page == sorted(mine, key=lambda r: r.created_at, reverse=True)
        assert after is None
    # a later batch replaces a record in place: same position, new status
    changed = _record(4, records[4].user, "confirmed")
    await writer.append(batch(1), None, records=[changed])
    page, _ = await index.page(changed.user, None, 100)
    assert changed in page and records[4] not in page
    # availability left out (b""): the stored one stays
    assert await redis_client.get(keys.availability(ROUTE)) == raw


async def test_a_fenced_append_stores_neither_availability_nor_records(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    old = activated(sync_client, redis_client)
    activated(sync_client, redis_client)
    with pytest.raises(Fenced):
        await old.append(batch(0), None, availability=b"avail", records=[_record(1, "alice")])
    assert await redis_client.get(keys.availability(ROUTE)) is None
    assert await UserIndex(redis_client).page("alice", None, 10) == ([], None)
    with pytest.raises(Fenced):
        journal.publish_availability(sync_client, ROUTE, old.epoch, b"avail")
    assert await redis_client.get(keys.availability(ROUTE)) is None


async def test_user_pages_end_where_they_say_and_continue_after_the_cursor(
    sync_client: redis.Redis, redis_client: redis.asyncio.Redis
) -> None:
    writer = activated(sync_client, redis_client)
    records = [_record(n, "carol") for n in range(7)]
    await writer.append(batch(0), None, records=records)
    index, walked, after = UserIndex(redis_client), [], None
    while True:
        page, after = await index.page("carol", after, 3)
        walked += page
        if after is None:
            break
        assert is_member(after)
    assert walked == records[::-1]

"""Keys from before the hash tags (issue 23) are renamed once on one server: a catalog and
users' bookings made by an older ticketd are still there after the upgrade."""

from __future__ import annotations

import redis.asyncio

from actors.storage import keys, routes_store


async def test_keys_from_before_the_hash_tags_are_renamed_once(
    redis_client: redis.asyncio.Redis,
) -> None:
    old = {
        "ticketd:routes": ("hset", "G1-20261201", "{}"),
        "ticketd:routes:ids": ("zadd", "G1-20261201"),
        "ticketd:routes:date:2026-12-01:station:4:A:B:": ("zadd", "G1-20261201"),
        "ticketd:sales": ("hset", "S1", "{}"),
        "ticketd:sales:of-route": ("hset", "G1-20261201", "S1"),
        "ticketd:user:5:a:b}c:records": ("hset", "B1", "rec"),
        "ticketd:user:5:a:b}c:bookings": ("zadd", "m:B1"),
    }
    for key, (kind, *args) in old.items():
        if kind == "hset":
            await redis_client.hset(key, args[0], args[1])
        else:
            await redis_client.zadd(key, {args[0]: 0})
    assert await routes_store.migrate_keys(redis_client) == len(old)
    assert await redis_client.hget(keys.ROUTES, "G1-20261201") == b"{}"
    assert await redis_client.zrange(keys.ROUTE_IDS, 0, -1) == [b"G1-20261201"]
    assert await redis_client.exists(keys.routes_of_date_station("2026-12-01", "A:B:")) == 1
    assert await redis_client.hget(keys.SALE_OF_ROUTE, "G1-20261201") == b"S1"
    assert await redis_client.hget(keys.user_records("a:b}c"), "B1") == b"rec"
    assert await redis_client.zrange(keys.user_bookings("a:b}c"), 0, -1) == [b"m:B1"]
    assert not await redis_client.exists(*old)
    assert await routes_store.migrate_keys(redis_client) == 0  # once


def test_a_user_s_two_keys_share_one_hash_slot_whatever_the_name() -> None:
    from redis.crc import key_slot

    for user in ("ann", "a:b", "x}y{z", "{}", "名前"):
        assert key_slot(keys.user_bookings(user).encode()) == key_slot(
            keys.user_records(user).encode()
        ), user

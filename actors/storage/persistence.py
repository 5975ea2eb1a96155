"""Start-up check of an external Redis: is it durable enough to acknowledge bookings?"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio

_VOLATILE_HINT = (
    "enable appendonly yes on the Redis server, "
    "or set TICKETD_ALLOW_VOLATILE=1 to run without durability"
)


async def check_persistence(client: redis.asyncio.Redis, allow_volatile: bool) -> str | None:
    """Refuse an external Redis without AOF unless allowed; return a warning if fsync is weak."""
    try:
        config = await client.config_get("append*")
    except redis.ResponseError:
        # Managed Redis services often rename or forbid CONFIG; INFO still says whether
        # AOF is on, though not how often it syncs.
        try:
            info = await client.info("persistence")
        except redis.ResponseError as exc2:
            return _unreadable(exc2, allow_volatile)
        return judge(None, info, allow_volatile)
    return judge(config, None, allow_volatile)


def check_persistence_sync(client: redis.Redis, allow_volatile: bool) -> str | None:
    """check_persistence for a blocking client (the start-up checks, before any event loop)."""
    try:
        config: Mapping[Any, Any] = client.config_get("append*")
    except redis.ResponseError:
        try:
            info: Mapping[Any, Any] = client.info("persistence")
        except redis.ResponseError as exc:
            return _unreadable(exc, allow_volatile)
        return judge(None, info, allow_volatile)
    return judge(config, None, allow_volatile)


def judge(
    config: Mapping[Any, Any] | None,
    info: Mapping[Any, Any] | None,
    allow_volatile: bool,
) -> str | None:
    """The verdict on CONFIG GET append* (or, without it, INFO persistence): raises
    RuntimeError for a Redis that would lose acknowledged bookings, else a warning or None."""
    fsync: str | None
    if config is not None:
        settings = {_text(key): _text(value) for key, value in config.items()}
        aof = settings.get("appendonly") == "yes"
        fsync = settings.get("appendfsync")
    else:
        aof = info is not None and _text(info.get("aof_enabled")) == "1"
        fsync = None
    if not aof:
        if allow_volatile:
            return "Redis AOF is off (appendonly no): a Redis restart loses bookings"
        raise RuntimeError(
            f"The Redis server has AOF persistence off (appendonly no), so a Redis restart "
            f"would lose acknowledged bookings; {_VOLATILE_HINT}."
        )
    if fsync is None:
        return "Redis appendfsync is unknown (CONFIG refused); ticketd expects appendfsync always"
    if fsync != "always":
        return (
            f"Redis appendfsync is {fsync!r}, not 'always': a host crash can lose acknowledged "
            f"bookings; set appendfsync always on the Redis server"
        )
    return None


def _unreadable(exc: Exception, allow_volatile: bool) -> str:
    if allow_volatile:
        return f"cannot read the Redis persistence settings ({exc}); durability unknown"
    raise RuntimeError(
        f"Cannot read the Redis persistence settings: CONFIG and INFO are refused "
        f"({exc}); allow CONFIG GET or INFO for ticketd's user, "
        f"or set TICKETD_ALLOW_VOLATILE=1 to run without durability."
    ) from exc


def _text(value: object) -> str:
    # Replies are bytes or str depending on decode_responses and the protocol version.
    return value.decode() if isinstance(value, bytes) else str(value)

"""Start-up checks that run before Ray starts: each failure is one sentence naming what to
change, and `python -m server` prints it on one line and exits non-zero.

Ray takes seconds to start and buries a late failure in a traceback inside uvicorn's
lifespan; everything that can be known from the settings alone is checked here first.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import urllib.parse
from pathlib import Path

import redis
from redis.asyncio.connection import parse_url

from actors.storage.persistence import check_persistence_sync
from server.settings import Settings

#: the oldest Redis ticketd is built and tested for (docs/architecture.md); Valkey reports
#: redis_version 7.2.4 for compatibility, so it passes
MIN_REDIS = (7, 0)
_TIMEOUT = 3.0


class StartupError(Exception):
    """A set-up ticketd refuses to run with; the message is one sentence."""


def check(settings: Settings) -> list[str]:
    """Every start-up check, in order; raises StartupError, returns warnings to log."""
    check_data_dir(settings.data_dir)
    check_listen(settings.host, settings.port)
    if settings.ray_address not in (None, "auto", "local"):
        check_ray_address(settings.ray_address or "")
    warnings = []
    if settings.redis_url:
        warning = check_redis(settings.redis_url, settings.allow_volatile,
                              settings.redis_replicas)  # fmt: skip
        if warning:
            warnings.append(warning)
    return warnings


def check_data_dir(path: Path) -> None:
    """The data directory exists (or can be made) and takes files."""
    probe = path / f".ticketd-write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(
            f"TICKETD_DATA_DIR={str(path)!r} is not a writable directory ({exc.strerror}); "
            f"point it at one ticketd may write to."
        ) from None


def check_listen(host: str, port: int) -> None:
    """TICKETD_HOST:TICKETD_PORT can be bound (uvicorn binds only after Ray is up)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(
            f"TICKETD_HOST={host!r} is not an address of this machine ({exc.strerror}); "
            f"use e.g. 127.0.0.1 or 0.0.0.0."
        ) from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # as uvicorn binds: SO_REUSEADDR, so a socket in TIME_WAIT does not count as taken
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"TICKETD_PORT={port} is already in use on {host}; stop what listens "
                    f"there (another ticketd?) or choose another TICKETD_PORT."
                ) from None
            raise StartupError(
                f"TICKETD_HOST={host!r} TICKETD_PORT={port} cannot be bound "
                f"({exc.strerror}); use an address of this machine and a free port."
            ) from None


def check_ray_address(address: str) -> None:
    """A host:port TICKETD_RAY_ADDRESS answers TCP (ray.init would retry it for a minute)."""
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise StartupError(
            f"TICKETD_RAY_ADDRESS={address!r} is not host:port (or auto); "
            f"use e.g. 10.0.0.1:6379, the head's GCS address."
        )
    try:
        socket.create_connection((host, int(port)), timeout=_TIMEOUT).close()
    except OSError as exc:
        raise StartupError(
            f"TICKETD_RAY_ADDRESS={address!r} does not answer ({exc.strerror or exc}); start "
            f"Ray there (ray start --head) or correct TICKETD_RAY_ADDRESS."
        ) from None


def redacted(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def parse_version(text: str) -> tuple[int, ...]:
    """'7.2.4' -> (7, 2, 4); unparseable parts count as 0."""
    out = []
    for part in text.split(".")[:3]:
        digits = re.match(r"\d*", part)
        out.append(int(digits.group()) if digits and digits.group() else 0)
    return tuple(out)


def check_redis(url: str, allow_volatile: bool, replicas: int = 0) -> str | None:
    """An external Redis is reachable, new enough and durable (every primary of a Redis
    Cluster), with `replicas` replicas to confirm writes; returns a warning or None."""
    shown = redacted(url)
    client = redis.Redis.from_url(url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT)
    servers: list[tuple[str, redis.Redis]] = []
    try:
        try:
            client.ping()
        except redis.AuthenticationError as exc:
            raise StartupError(
                f"TICKETD_REDIS_URL={shown} refused ticketd's credentials ({exc}); put the "
                f"right user and password in the URL: redis://<user>:<password>@host:port/0."
            ) from None
        except redis.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise StartupError(
                    f"TICKETD_REDIS_URL={shown} needs a password ({exc}); put it in the URL: "
                    f"redis://:<password>@host:port/0."
                ) from None
            raise
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise StartupError(
                f"TICKETD_REDIS_URL={shown} is unreachable ({_first_line(exc)}); start that "
                f"Redis, or correct TICKETD_REDIS_URL (unset it for an embedded one)."
            ) from None
        _check_version(client, shown)
        servers += _primaries(client, url)
        _check_replicas(servers, replicas, shown)
        warnings = []
        for name, server in servers:
            try:
                warning = check_persistence_sync(server, allow_volatile)
            except RuntimeError as exc:
                raise StartupError(f"TICKETD_REDIS_URL={shown}{name}: {exc}") from None
            if warning:
                warnings.append(warning + name)
        return "; ".join(dict.fromkeys(warnings)) or None
    finally:
        for _, server in servers:
            if server is not client:  # a cluster's primaries, opened by _primaries
                server.close()
        client.close()


def _primaries(client: redis.Redis, url: str) -> list[tuple[str, redis.Redis]]:
    """Each primary to check, with how to name it: the server itself, or every primary of
    the Redis Cluster it is a node of (with the URL's credentials)."""
    try:
        cluster = str(client.info("cluster").get("cluster_enabled", "0")) == "1"
    except redis.ResponseError:
        cluster = False  # INFO forbidden: as for the version
    if not cluster:
        return [("", client)]
    opts = parse_url(url)
    out = []
    for first, _last, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):  # type: ignore[no-untyped-call]
        # "" until the node has met another: the one the URL names
        host, port = primary[0].decode() or str(opts.get("host")), int(primary[1])
        server = redis.Redis(host=host, port=port, username=opts.get("username"),
                             password=opts.get("password"), socket_timeout=_TIMEOUT,
                             socket_connect_timeout=_TIMEOUT)  # fmt: skip
        out.append((f" (the cluster's primary {host}:{port}, slots from {first})", server))
    return out


def _check_replicas(servers: list[tuple[str, redis.Redis]], replicas: int, shown: str) -> None:
    """Every primary has at least TICKETD_REDIS_REPLICAS replicas linked: with fewer,
    every append would wait out WAITAOF and answer "unavailable"."""
    if not replicas:
        return
    for name, server in servers:
        linked = int(server.info("replication").get("connected_slaves", 0))
        if linked < replicas:
            raise StartupError(
                f"TICKETD_REDIS_URL={shown}{name} has {linked} replicas linked and "
                f"TICKETD_REDIS_REPLICAS={replicas} asks each booking to reach {replicas}: "
                f"add replicas to that primary or lower TICKETD_REDIS_REPLICAS."
            )


def _check_version(client: redis.Redis, shown: str) -> None:
    try:
        info = client.info("server")
    except redis.ResponseError:
        return  # INFO forbidden: nothing to judge by; the commands themselves will tell
    assert isinstance(info, dict)
    raw = str(info.get("redis_version", ""))
    if raw and parse_version(raw) < MIN_REDIS:
        want = ".".join(map(str, MIN_REDIS))
        raise StartupError(
            f"TICKETD_REDIS_URL={shown} is Redis {raw}; ticketd needs Redis >= {want} or "
            f"Valkey: upgrade that server or point TICKETD_REDIS_URL at a newer one."
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

"""Settings: one frozen dataclass built from TICKETD_* environment variables."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

T = TypeVar("T", int, float)


class ConfigError(ValueError):
    """Bad configuration: the message says which variable to change and how."""


def _number(
    env: Mapping[str, str], name: str, default: T, lo: T, hi: T, parse: Callable[[str], T]
) -> T:
    raw = env.get(f"TICKETD_{name}")
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        kind = "an integer" if parse is int else "a number"
        raise ConfigError(f"TICKETD_{name}={raw!r} is not {kind}; use e.g. {default}.") from None
    if not lo <= value <= hi:
        raise ConfigError(f"TICKETD_{name}={value} is out of range; use {lo} to {hi}.")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _number(env, name, default, lo, hi, int)


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _number(env, name, default, lo, hi, float)


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(f"TICKETD_{name}", "").strip().lower()
    if raw == "":
        return default
    if raw not in allowed:
        raise ConfigError(f"TICKETD_{name}={raw!r} must be one of {', '.join(allowed)}.")
    return raw


def parse_labels(text: str) -> dict[str, str]:
    """`key=value[,key=value]` as a dict; ValueError says what is wrong."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ValueError(f"{part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _labels(env: Mapping[str, str], name: str) -> dict[str, str]:
    raw = env.get(f"TICKETD_{name}", "")
    try:
        return parse_labels(raw)
    except ValueError as exc:
        raise ConfigError(
            f"TICKETD_{name}={raw!r}: {exc}; use Ray node labels as key=value[,key=value], "
            "e.g. ticketd-routes=yes."
        ) from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(f"TICKETD_{name}", "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"TICKETD_{name}={raw!r} must be 1 or 0.")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    data_dir: Path = Path("data")
    jwt_secret: str = field(default="", repr=False)
    hold_seconds: float = 600.0
    ray_address: str | None = None
    allow_volatile: bool = False
    user_cap: int = 5
    #: requests waiting per route beyond the one call in flight; more are answered 503
    max_queue: int = 2000
    #: coalesce concurrent requests per route into one actor call (off: one call each)
    batching: bool = True
    #: batched calls per route in flight at once from one front end; the actor merges
    #: calls that meet in its queue into one journal write (group commit)
    calls_in_flight: int = 1
    #: under load, how long a route's next call may wait until as many requests have
    #: queued as its last call saw (server/dispatch/batches.py); 0: never
    batch_linger: float = 0.008
    #: how stale a front end's availability snapshot may get before it asks the actor
    availability_refresh: float = 0.25
    snapshot_every: int = 2000
    #: an idle route actor (no calls) deactivates after this long, freeing ~70 MB; 0: never
    idle_seconds: float = 900.0
    #: a front end whose Ray GCS stays unreachable this long exits (code 3); 0: never
    ray_lost_seconds: float = 30.0
    log_json: bool | None = None
    #: HMAC key of the data plane to the route actors; the same on every node of a cluster
    cluster_secret: str = field(default="", repr=False)
    #: "auto": a same-node actor over its Unix socket, others over TCP; "tcp": always TCP
    plane_transport: str = "auto"
    #: seconds to connect and authenticate to a route actor's data plane
    plane_connect_timeout: float = 2.0
    #: a request unanswered this long cuts the connection (503, safe to retry): a frozen
    #: actor (its node stalled) keeps its socket open and would hold its callers until it
    #: wakes. A batch is one fsync, normally milliseconds; the actor itself gives up on a
    #: Redis write after 5 s and answers "unavailable" then.
    plane_request_timeout: float = 5.0
    #: front-end processes on this node sharing the port (server/boot/workers.py); 1: the
    #: server process serves HTTP itself
    workers: int = 1
    #: Ray node labels route actors run on (actors/placement.py), e.g. keep them off the
    #: head: TICKETD_ROUTE_NODES=ticketd-routes=yes with `ray start --labels` on the others
    route_nodes: dict[str, str] = field(default_factory=dict)
    #: every front-end worker and route actor freezes its heap this often, keeping full
    #: garbage collections off the hot path (actors/heap.py); 0: CPython's own collector
    gc_freeze_seconds: float = 1.0
    #: a booking is acknowledged once this many replicas of its Redis primary have it in
    #: their AOF (WAITAOF); 0: the primary's own fsync'd AOF (docs/deploy.md)
    redis_replicas: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read TICKETD_* variables; raises ConfigError naming the variable to fix."""
        env = os.environ if env is None else env
        redis_url = env.get("TICKETD_REDIS_URL") or None
        if redis_url is not None and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"TICKETD_REDIS_URL={redis_url!r} must start with redis://, rediss:// or unix://."
            )
        log_json = env.get("TICKETD_LOG_JSON")
        settings = cls(
            host=env.get("TICKETD_HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, 0, 65535),
            redis_url=redis_url,
            data_dir=Path(env.get("TICKETD_DATA_DIR") or "data"),
            jwt_secret=env.get("TICKETD_JWT_SECRET") or "",
            hold_seconds=_float(env, "HOLD_SECONDS", 600.0, 0.05, 86400 * 7),
            ray_address=env.get("TICKETD_RAY_ADDRESS") or None,
            allow_volatile=_bool(env, "ALLOW_VOLATILE", False),
            user_cap=_int(env, "USER_CAP", 5, 1, 1000),
            max_queue=_int(env, "MAX_QUEUE", 2000, 1, 1_000_000),
            batching=_bool(env, "BATCHING", True),
            calls_in_flight=_int(env, "CALLS_IN_FLIGHT", 1, 1, 64),
            batch_linger=_float(env, "BATCH_LINGER_MS", 8.0, 0.0, 1000.0) / 1000,
            availability_refresh=_float(env, "AVAILABILITY_REFRESH", 0.25, 0.0, 60.0),
            snapshot_every=_int(env, "SNAPSHOT_EVERY", 2000, 10, 10_000_000),
            idle_seconds=_float(env, "IDLE_SECONDS", 900.0, 0.0, 86400 * 30),
            ray_lost_seconds=_float(env, "RAY_LOST_SECONDS", 30.0, 0.0, 86400.0),
            log_json=None if not log_json else _bool(env, "LOG_JSON", False),
            cluster_secret=env.get("TICKETD_CLUSTER_SECRET") or "",
            plane_transport=_choice(env, "PLANE_TRANSPORT", "auto", ("auto", "tcp")),
            plane_request_timeout=_float(env, "PLANE_REQUEST_TIMEOUT", 5.0, 0.5, 600.0),
            # one per core: Python serves one core per process
            workers=_int(env, "WORKERS", cores(), 1, 256),
            route_nodes=_labels(env, "ROUTE_NODES"),
            gc_freeze_seconds=_float(env, "GC_FREEZE_SECONDS", 1.0, 0.0, 600.0),
            redis_replicas=_int(env, "REDIS_REPLICAS", 0, 0, 16),
        )
        if settings.jwt_secret and len(settings.jwt_secret.encode()) < 32:
            # RFC 7518 §3.2: an HS256 key must be at least as long as the hash (32 bytes)
            raise ConfigError(
                "TICKETD_JWT_SECRET must be at least 32 bytes long; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        if settings.cluster_secret and len(settings.cluster_secret.encode()) < 32:
            raise ConfigError(
                "TICKETD_CLUSTER_SECRET must be at least 32 bytes long; generate one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        return settings

    def with_secret(self) -> Settings:
        """This settings with its secrets: the configured ones, else ones kept in DATA_DIR."""
        jwt_secret = self.jwt_secret or _kept_secret(self.data_dir / "jwt_secret")
        cluster = self.cluster_secret or _kept_secret(self.data_dir / "cluster_secret")
        if (jwt_secret, cluster) == (self.jwt_secret, self.cluster_secret):
            return self
        return replace(self, jwt_secret=jwt_secret, cluster_secret=cluster)


def cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _kept_secret(path: Path) -> str:
    """The secret stored at path, generated on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # created 0600: the JWT secret signs admin tokens, the cluster secret opens the
        # route actors' data plane
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()

"""What the server runs beside itself: the embedded Redis and a local Ray.

Started on the main thread before uvicorn (the embedded Redis's parent-death
signal is tied to the starting thread), stopped idempotently: Ctrl-C under
make may deliver SIGINT/SIGTERM twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import ray
import structlog

from actors.config import NAMESPACE
from actors.storage.redis_server import EmbeddedRedis
from actors.storage.supervisor import RedisSupervisor
from server.boot.preflight import StartupError
from server.boot.raywatch import RayWatch
from server.settings import Settings

log = structlog.get_logger("ticketd.runtime")

_RAY_SHUTDOWN_SECONDS = 5.0
#: set for a node's front-end workers: the file where the embedded Redis's supervisor
#: keeps its sentence while the server is down (RedisSupervisor.problem_file)
PROBLEM_FILE_ENV = "TICKETD_REDIS_PROBLEM_FILE"


class Runtime:
    """Owns the embedded Redis (if any) and the Ray connection of one front end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.redis: EmbeddedRedis | None = None
        self.supervisor: RedisSupervisor | None = None
        self.redis_url = settings.redis_url or ""
        self._owns_ray = False
        self._stopped = False
        #: the start-up checks (server.boot.preflight) already judged the external Redis
        self.preflighted = False
        self.ray_watch: RayWatch | None = None
        #: ray.shutdown() did not return: the process must not wait for Ray's atexit hooks
        self.ray_stuck = False

    def start(self) -> None:
        """Start the embedded Redis (unless TICKETD_REDIS_URL is set) and join/start Ray.

        Raises StartupError (one sentence) when either cannot be had.
        """
        if not self.settings.redis_url:
            self.start_redis()
        self.start_ray()

    def start_redis(self) -> None:
        """Start the embedded Redis and its supervisor."""
        redis = EmbeddedRedis(self.settings.data_dir)
        try:
            self.redis_url = redis.start()
        except RuntimeError as exc:
            said = redis.last_words() or str(exc).splitlines()[0]
            raise StartupError(
                f"the embedded Redis in {redis.logfile.parent} would not start ({said}); "
                f"see {redis.logfile}, or set TICKETD_REDIS_URL to an external Redis."
            ) from None
        self.redis = redis
        log.info("embedded redis started", url=self.redis_url, pid=redis.pid)
        # from here on a dead Redis is restarted on the same AOF and port
        self.supervisor = RedisSupervisor(redis)
        self.supervisor.start()

    def start_ray(self) -> None:
        """Start a local Ray, or join the one TICKETD_RAY_ADDRESS names."""
        try:
            self._init_ray()
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = self.settings.ray_address or "unset (a local Ray)"
            raise StartupError(
                f"Ray would not start or connect with TICKETD_RAY_ADDRESS={where} "
                f"({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}); "
                f"start Ray (ray start --head) or correct TICKETD_RAY_ADDRESS."
            ) from None

    def watch_ray(self, on_lost: Callable[[], None]) -> None:
        """Call on_lost (once, from a thread) when this front end's Ray is gone for good."""
        if not ray.is_initialized() or self.settings.ray_lost_seconds <= 0:
            return
        address = ray.get_runtime_context().gcs_address
        self.ray_watch = RayWatch(address, self.settings.ray_lost_seconds, on_lost)
        self.ray_watch.start()

    @property
    def ray_lost(self) -> bool:
        """Whether the Ray watch gave up on the cluster."""
        return self.ray_watch is not None and self.ray_watch.lost

    def _init_ray(self) -> None:
        if not ray.is_initialized():
            address = self.settings.ray_address
            # the local Ray runs with token auth (RAY_AUTH_MODE=token, set in server.__main__
            # before ray is imported); joining a cluster uses that cluster's own mode
            ray.init(
                # unset means a Ray of this process's own: a plain ray.init() would join
                # whatever cluster /tmp/ray names (a `ray start`, or a dead one's leftover
                # file, which it then waits on for two minutes)
                address=address or "local",
                namespace=NAMESPACE,
                include_dashboard=False if address is None else None,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=False,
            )
            self._owns_ray = True
            log.info(
                "ray connected", address=address or "local", auth=os.environ.get("RAY_AUTH_MODE")
            )

    def redis_problem(self) -> str | None:
        """Why the embedded Redis is not serving (an operator's sentence), or None."""
        if self.supervisor is not None:
            return self.supervisor.problem
        # a front-end worker: the node's supervisor process runs the Redis and keeps its
        # sentence in a file (server/boot/workers.py)
        shared = os.environ.get(PROBLEM_FILE_ENV)
        if not shared:
            return None
        try:
            return Path(shared).read_text().strip() or None
        except OSError:
            return None

    def stop(self) -> None:
        """Shut Ray (if we started it) and the embedded Redis down; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.ray_watch is not None:
            self.ray_watch.stop()
        if self._owns_ray and not self.ray_lost:
            # bounded: with its GCS gone, ray.shutdown() can block for good
            done = threading.Event()

            def shutdown() -> None:
                try:
                    ray.shutdown()
                except Exception as exc:  # shutting down: report, keep going
                    log.warning("ray shutdown failed", error=repr(exc))
                finally:
                    done.set()

            threading.Thread(target=shutdown, name="ray-shutdown", daemon=True).start()
            if not done.wait(_RAY_SHUTDOWN_SECONDS):
                self.ray_stuck = True
                log.warning("ray shutdown timed out", seconds=_RAY_SHUTDOWN_SECONDS)
        if self.supervisor is not None:
            self.supervisor.close()
            log.info("embedded redis stopped")
        elif self.redis is not None:
            self.redis.stop()
            log.info("embedded redis stopped")

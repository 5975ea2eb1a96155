"""Notices that the front end's Ray is gone for good, so the front end can exit.

A front end is a Ray driver. When its cluster goes away (`ray down`, the head lost),
the driver keeps retrying the GCS at about half a core and answers nothing useful,
while holding its port: a zombie no supervisor restarts. This watch connects to the
GCS port every second; once it has refused for `lost_after` seconds in a row (longer
than a GCS restart with fault tolerance takes), it calls `on_lost` once.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("ticketd.runtime")

_PROBE_SECONDS = 1.0


def gcs_reachable(address: str, timeout: float = 1.0) -> bool:
    """Whether host:port accepts a TCP connection."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


class RayWatch:
    """A daemon thread probing the GCS; calls on_lost once it stays unreachable."""

    def __init__(self, address: str, lost_after: float, on_lost: Callable[[], None]) -> None:
        self.address = address
        self.lost_after = lost_after
        self._on_lost = on_lost
        self._stop = threading.Event()
        self.lost = False
        self._thread = threading.Thread(target=self._run, name="ray-watch", daemon=True)

    def start(self) -> None:
        """Begin probing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop probing (idempotent)."""
        self._stop.set()

    def _run(self) -> None:
        down_since: float | None = None
        while not self._stop.wait(_PROBE_SECONDS):
            if gcs_reachable(self.address):
                if down_since is not None:
                    log.info("ray gcs reachable again", gcs=self.address)
                down_since = None
                continue
            now = time.monotonic()
            if down_since is None:
                down_since = now
                log.warning("ray gcs unreachable", gcs=self.address)
            if now - down_since >= self.lost_after:
                self.lost = True
                log.error(
                    "ray cluster gone: exiting so a supervisor can start a fresh front end",
                    gcs=self.address,
                    unreachable_seconds=round(now - down_since, 1),
                )
                self._on_lost()
                return

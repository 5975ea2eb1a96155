"""The Ray watch (server/boot/raywatch.py) over real sockets: a GCS port that stays closed for
`lost_after` seconds is reported once; one that comes back in time is not."""

from __future__ import annotations

import socket
import threading
import time

from server.boot.raywatch import RayWatch, gcs_reachable


def _listener() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_gcs_reachable_tells_an_open_port_from_a_closed_one() -> None:
    with _listener() as sock:
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        assert gcs_reachable(address)
    assert not gcs_reachable(address)
    assert not gcs_reachable("not-an-address")


def test_a_gcs_gone_for_good_is_reported_once_after_lost_after() -> None:
    sock = _listener()
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    calls: list[float] = []
    fired = threading.Event()

    def lost() -> None:
        calls.append(time.monotonic())
        fired.set()

    watch = RayWatch(address, lost_after=1.5, on_lost=lost)
    watch.start()
    try:
        time.sleep(1.5)
        assert not fired.is_set(), "a live GCS is never reported"
        sock.close()
        closed = time.monotonic()
        assert fired.wait(6.0)
        assert 1.5 <= calls[0] - closed <= 4.0, calls[0] - closed
        time.sleep(1.5)
        assert len(calls) == 1 and watch.lost
    finally:
        watch.stop()
        sock.close()


def test_a_gcs_back_within_lost_after_is_not_reported() -> None:
    sock = _listener()
    port = sock.getsockname()[1]
    fired = threading.Event()
    watch = RayWatch(f"127.0.0.1:{port}", lost_after=3.0, on_lost=fired.set)
    watch.start()
    try:
        sock.close()
        time.sleep(1.6)  # a GCS restart: down for a moment, then back on its port
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not fired.wait(3.5) and not watch.lost
    finally:
        watch.stop()
        sock.close()

"""The workers' supervisor is told to stop from a signal handler without taking a lock
(server/boot/workers.py): a second signal can land while the first one's handler runs,
in the same thread, and a handler waiting on a lock its own thread holds never returns.
That hung a `make run` stopped by a SIGTERM to its whole process group."""

from __future__ import annotations

import threading
from typing import Any, cast

from server.boot.workers import Supervisor
from server.settings import Settings


def _supervisor() -> Supervisor:
    return Supervisor(Settings(workers=2), cast(Any, None))  # run() is not called


def test_a_signal_handler_stops_the_supervisor_while_its_lock_is_held() -> None:
    sup = _supervisor()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # as the first handler's Event.set holds it when the next lands
        with sup._stop._cond:
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(5)
    stopper = threading.Thread(target=sup.signalled)
    stopper.start()
    stopper.join(1)
    finished = not stopper.is_alive()
    release.set()
    holder.join()
    stopper.join()
    assert finished, "signalled() waited on the stop event's lock"
    assert sup.stopping


def test_a_stop_from_a_thread_and_from_a_signal_both_stop_it() -> None:
    by_thread, by_signal = _supervisor(), _supervisor()
    by_thread.request_stop(3)
    by_signal.signalled()
    by_signal.signalled()  # twice is fine
    assert by_thread.stopping and by_signal.stopping

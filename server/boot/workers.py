"""Several front-end processes per node, sharing the port.

Python serves one core per process, and a flash sale's work (refusals, reads, queue
polls, batching) is front-end work. So `python -m server` with TICKETD_WORKERS > 1 is a
supervisor: it starts the embedded Redis and the local Ray once, then runs that many
`python -m server worker` processes, each a Ray driver with its own channels, batchers
and caches, each listening on the same port.

The port is shared with SO_REUSEPORT, not by handing one listening socket to every
worker (uvicorn's and gunicorn's way): with one shared accept queue, whichever worker
wakes first takes a whole burst of new connections, and a flash sale's clients keep
theirs alive, so one worker can end up with most of them while the other core idles.
With SO_REUSEPORT each worker has its own queue and the kernel spreads connections
evenly by their addresses; a worker joins the group only once it listens, i.e. once its
lifespan is ready. The supervisor itself holds a bound socket of the group that never
listens: it keeps the port ours between a worker's death and its replacement, and it
resolves TICKETD_PORT=0 to one port for all.

A worker that dies is replaced (at once, or after a growing pause if it keeps dying
young); one that exits because the Ray cluster is gone (code 3) stops the node's front
end with the same code. SIGINT/SIGTERM (twice is fine) stop every worker gracefully,
then Ray and Redis; workers also get SIGTERM if the supervisor dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import structlog

from actors.storage.redis_process import parent_death_signal
from server.boot.runtime import PROBLEM_FILE_ENV, Runtime
from server.settings import Settings

log = structlog.get_logger("ticketd.workers")

#: exit code of a worker (and of the supervisor) whose Ray cluster went away for good
RAY_LOST = 3
#: a worker that dies younger than this is "dying young": its replacement waits a while
_YOUNG_SECONDS = 5.0
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 30.0
#: how long stopping workers get before SIGKILL (uvicorn's 5 s drain + Ray's 5 s shutdown)
_STOP_SECONDS = 15.0
_POLL_SECONDS = 0.1


def listen_socket(host: str, port: int, listen: bool = True) -> socket.socket:
    """A TCP socket on host:port in the port's SO_REUSEPORT group (listening if asked)."""
    family, kind, proto, _, addr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        if listen:
            sock.listen(2048)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    #: consecutive deaths young, and when the next start is due
    deaths: int = 0
    due: float = 0.0


class Supervisor:
    """Runs TICKETD_WORKERS front-end workers beside the node's Redis and Ray."""

    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings = settings
        self.runtime = runtime
        self._stop = threading.Event()
        #: set by a signal handler: a plain flag, the loop looks every _POLL_SECONDS
        self._signalled = False
        self._code = 0
        self._workers = [_Worker(i) for i in range(settings.workers)]
        self._holder: socket.socket | None = None

    def request_stop(self, code: int = 0) -> None:
        """Stop every worker (from a thread; twice is fine). Not from a signal handler:
        see `signalled`."""
        if code and not self._code:
            self._code = code
        self._stop.set()

    def signalled(self) -> None:
        """Stop every worker: for a signal handler, so it takes no lock. Event.set does:
        a second signal landing while the first one's handler held it (Ctrl-C under
        make, a group's SIGTERM) would wait on that lock forever, in the main thread."""
        self._signalled = True

    @property
    def stopping(self) -> bool:
        return self._signalled or self._stop.is_set()

    def run(self) -> int:
        """Serve until told to stop; returns the exit code (0, or 3: Ray gone)."""
        self._holder = listen_socket(self.settings.host, self.settings.port, listen=False)
        port = self._holder.getsockname()[1]
        env = self._worker_env(port)
        log.info("front-end workers starting", workers=len(self._workers), port=port)
        try:
            while not self.stopping:
                now = time.monotonic()
                for w in self._workers:
                    if w.proc is not None and w.proc.poll() is not None:
                        self._reap(w, now)
                    if w.proc is None and now >= w.due and not self.stopping:
                        self._start(w, env)
                self._stop.wait(_POLL_SECONDS)
        finally:
            self._stop_workers()
            self._holder.close()
        return self._code

    def pids(self) -> list[int]:
        """The live workers' pids."""
        return [w.proc.pid for w in self._workers if w.proc is not None]

    def _worker_env(self, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env["TICKETD_PORT"] = str(port)
        # the supervisor's Redis and Ray, whatever TICKETD_* said: embedded or external
        env["TICKETD_REDIS_URL"] = self.runtime.redis_url
        import ray

        env["TICKETD_RAY_ADDRESS"] = ray.get_runtime_context().gcs_address
        env["PYTHONUNBUFFERED"] = "1"
        if self.runtime.supervisor is not None:
            env[PROBLEM_FILE_ENV] = str(self.runtime.supervisor.problem_file)
        return env

    def _start(self, w: _Worker, env: dict[str, str]) -> None:
        w.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "worker"],
            env={**env, "TICKETD_WORKER_INDEX": str(w.index)},
            stdin=subprocess.DEVNULL,
            preexec_fn=parent_death_signal(),  # resolved before the fork
        )
        w.started = time.monotonic()
        log.info("front-end worker started", worker=w.index, pid=w.proc.pid)

    def _reap(self, w: _Worker, now: float) -> None:
        assert w.proc is not None
        code, pid = w.proc.returncode, w.proc.pid
        w.proc = None
        if self.stopping:
            return
        if code == RAY_LOST:
            log.error("front-end worker lost the ray cluster", worker=w.index, pid=pid)
            self.request_stop(RAY_LOST)
            return
        lived = now - w.started
        w.deaths = w.deaths + 1 if lived < _YOUNG_SECONDS else 0
        pause = 0.0 if w.deaths == 0 else min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (w.deaths - 1))
        w.due = now + pause
        log.warning(
            "front-end worker died; replacing it",
            worker=w.index,
            pid=pid,
            exit_code=code,
            lived_s=round(lived, 1),
            restart_in_s=pause,
        )

    def _stop_workers(self) -> None:
        live = [w.proc for w in self._workers if w.proc is not None and w.proc.poll() is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_SECONDS
        for proc in live:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("front-end worker did not stop; killing it", pid=proc.pid)
                _signal(proc, signal.SIGKILL)
                proc.wait()
        for w in self._workers:
            w.proc = None


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)

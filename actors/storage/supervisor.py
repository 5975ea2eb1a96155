"""Keeps the embedded Redis alive: notices its death at once and restarts it (docs/architecture.md).

A restart uses the same data directory (so the same AOF: every acknowledged write comes
back) and the same port (so every client's URL, the route actors' included, stays valid;
redis-py clients reconnect by themselves). EmbeddedRedis.start() stops a leftover server
on that directory first, so there are never two servers on one AOF.

A server that fails by itself again soon after starting, without having stored
anything (a corrupt AOF, a full disk, a bad binary: it exits with an error code or
crashes), is restarted with exponential backoff, never in a tight loop; its own last
words (the warning lines of its log) go into the log and into `problem`, which /readyz
shows. Two kinds of death are not a crash loop, however soon they come: a server that
came up and stored writes, and a server killed from outside (SIGKILL, SIGTERM: the OOM
killer, an operator, a fault injector), even during its start-up. Both are restarted at
once, every time. (Counting every death within 5 s "in a row" once made the eighth of
eight kills a few seconds apart under load wait 30 s for its restart.)
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from actors.storage.redis_server import EmbeddedRedis

log = structlog.get_logger("ticketd.redis")


@dataclass(frozen=True, slots=True)
class Backoff:
    """When to restart a server that keeps dying."""

    #: how often the process is looked at: a death is noticed within this
    poll: float = 0.1
    #: a server that ran this long before dying, or stored writes before it died (it
    #: came up and served), died of something new: restart at once
    stable_after: float = 5.0
    #: the wait before the second restart in a row; doubled for each further one
    first: float = 0.5
    #: the longest wait between restarts
    cap: float = 30.0
    #: how long one start may take (loading a large AOF)
    start_timeout: float = 30.0

    def delay(self, streak: int) -> float:
        """Wait before restart number `streak` of a run of quick deaths (1: the first)."""
        if streak <= 1:
            return 0.0
        return float(min(self.cap, self.first * 2 ** (streak - 2)))


#: what the server dies of when something outside it ends it, not its own failure
_FROM_OUTSIDE = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def killed_from_outside(code: int | None) -> bool:
    """Whether an exit status says the process was ended by another (a signal that
    kills, not one of its own crashes such as SIGSEGV or SIGABRT)."""
    return code is not None and code < 0 and -code in _FROM_OUTSIDE


def describe_exit(code: int | None) -> str:
    """An exit status in words, as an operator reads it."""
    if code is None:
        return "exited"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            return f"was killed by {name} (what an out-of-memory kill does)"
        return f"was killed by {name}"
    return f"exited with code {code}"


class RedisSupervisor:
    """Watches one EmbeddedRedis from a thread of its own and restarts it when it dies.

    The thread must live as long as the server: Linux delivers the parent-death signal
    when the *thread* that forked the server exits (see redis_server._parent_death_signal),
    so a server this thread restarted would get SIGTERM if the thread ended early. Hence
    the loop never lets an exception end it, and close() stops the server before the
    thread ends.
    """

    def __init__(
        self,
        redis: EmbeddedRedis,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = redis
        self.backoff = backoff or Backoff()
        self._clock = clock
        self._closing = threading.Event()
        # held while the server is being (re)started or stopped: never both at once
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._up_since = clock()
        self._aof_at_start = redis.aof_mark()
        self._streak = 0  # quick deaths and failed starts in a row
        self._problem: str | None = None
        self.restarts = 0

    @property
    def problem(self) -> str | None:
        """None while the server runs; else a sentence saying what is wrong and what to do."""
        return self._problem

    @property
    def problem_file(self) -> Path:
        """Where `problem` is kept for other processes (a node's front-end workers' /readyz):
        the sentence while there is one, no file while the server runs."""
        return self.redis.logfile.with_suffix(".problem")

    def _say(self, problem: str | None) -> None:
        self._problem = problem
        try:
            if problem is None:
                self.problem_file.unlink(missing_ok=True)
            else:
                tmp = self.problem_file.with_suffix(".problem.tmp")
                tmp.write_text(problem)
                tmp.replace(self.problem_file)  # readers see the old sentence or the new
        except OSError as exc:
            log.warning("redis problem not shared", error=repr(exc))

    def start(self) -> None:
        """Begin watching the (already running) server."""
        if self._thread is not None:
            return
        self._say(None)  # a sentence left by an earlier run is no news about this server
        self._up_since = self._clock()
        self._aof_at_start = self.redis.aof_mark()
        self._thread = threading.Thread(target=self._watch, name="redis-supervisor", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop watching and stop the server (gracefully: its AOF is fsynced)."""
        self._closing.set()
        # a restart in progress finishes first (bounded by start_timeout); then no new one
        # can begin, and the server is stopped while the thread that forked it still lives
        acquired = self._lock.acquire(timeout=self.backoff.start_timeout + timeout)
        try:
            self.redis.stop()
        finally:
            if acquired:
                self._lock.release()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # ---- the watch loop -------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closing.is_set():
            try:
                if self.redis.running:
                    self._closing.wait(self.backoff.poll)
                    continue
                self._recover()
            except Exception as exc:  # the loop must outlive anything (see the class doc)
                log.exception("redis supervisor error", error=repr(exc))
                self._closing.wait(1.0)

    def _recover(self) -> None:
        """The server is gone: say why, wait if it keeps dying, start it again."""
        lived = self._clock() - self._up_since
        code = self.redis.returncode
        cause = describe_exit(code)
        words = self.redis.last_words()
        served = self.redis.aof_mark() != self._aof_at_start
        failing = lived < self.backoff.stable_after and not served and not killed_from_outside(code)
        self._streak = self._streak + 1 if failing else 1
        log.error(
            "embedded redis died",
            cause=cause,
            redis_said=words or None,
            lived_seconds=round(lived, 1),
            stored_writes=served,
            deaths_in_a_row=self._streak,
            log=str(self.redis.logfile),
        )
        self._say(self._sentence(cause, words, 0.0))
        while not self._closing.is_set():
            delay = self.backoff.delay(self._streak)
            if delay:
                self._say(self._sentence(cause, words, delay))
                log.warning(
                    "embedded redis restart backing off",
                    retry_in_seconds=delay,
                    deaths_in_a_row=self._streak,
                    redis_said=words or None,
                )
                if self._closing.wait(delay):
                    return
            started = self._clock()
            with self._lock:
                if self._closing.is_set():
                    return
                try:
                    self.redis.start(timeout=self.backoff.start_timeout, keep_port=True)
                except RuntimeError as exc:
                    failure: RuntimeError | None = exc
                else:
                    failure = None
            if failure is None:
                self._up_since = self._clock()
                self._aof_at_start = self.redis.aof_mark()
                self.restarts += 1
                self._say(None)
                log.info(
                    "embedded redis restarted",
                    pid=self.redis.pid,
                    url=self.redis.url,
                    start_ms=round((self._up_since - started) * 1000, 1),
                    restarts=self.restarts,
                )
                return
            if not killed_from_outside(self.redis.failed_start_code):
                self._streak += 1
            cause = "could not start again"
            words = self.redis.last_words() or str(failure).splitlines()[0]
            log.error(
                "embedded redis restart failed",
                redis_said=words,
                deaths_in_a_row=self._streak,
                log=str(self.redis.logfile),
            )

    def _sentence(self, cause: str, words: str, delay: float) -> str:
        said = f"; it said: {words!r}" if words else ""
        if not delay:
            return (
                f"the embedded Redis {cause}{said}; ticketd is restarting it on the same "
                f"data directory, bookings answer 503 until it is back"
            )
        return (
            f"the embedded Redis {cause} and keeps failing ({self._streak} times in a "
            f"row{said}); ticketd tries again in {delay:g} s. Fix what it reports (e.g. "
            f"repair a corrupt AOF in {self.redis.logfile.parent / 'appendonlydir'} with "
            f"valkey-check-aof --fix, or free disk space), see {self.redis.logfile}"
        )

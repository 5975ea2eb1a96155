"""The embedded Redis server's process, seen from outside: start it so that it dies with
us, probe it, stop it, and tell whether a pid from a pidfile is still our server."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"
#: the binaries a Redis-compatible server may run as
SERVER_NAMES = ("redis-server", "valkey-server")
_PING = b"*1\r\n$4\r\nPING\r\n"
_SHUTDOWN = b"*1\r\n$8\r\nSHUTDOWN\r\n"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL = 0.02
_PROCFS = Path("/proc/self/stat").exists()  # Linux; elsewhere (macOS) ask kill(0) and ps


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def parent_death_signal() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM (a graceful shutdown) when we die."""
    if sys.platform != "linux":
        return None
    # Resolve everything before fork: between fork and exec the child may only make
    # plain calls, no imports or lookups that could take a lock another thread held.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    sigterm = int(signal.SIGTERM)
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        # PDEATHSIG fires when the *thread* that forked the child exits, not the process:
        # start() belongs on a long-lived thread (the main one), never a short-lived worker.
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)  # we died before prctl took effect, so the signal will never come

    return set_parent_death_signal


def wait_ready(proc: subprocess.Popen[bytes], port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        # PING, not just connect: a server still loading its AOF accepts connections but
        # answers -LOADING until the data is back.
        if (command(port, _PING, timeout=0.5) or b"").startswith(b"+PONG"):
            return True
        time.sleep(_POLL)
    return False


def send_shutdown(port: int) -> bool:
    # A successful SHUTDOWN closes the connection without a reply; an error reply
    # (e.g. the final AOF fsync failed) means the server is still up.
    reply = command(port, _SHUTDOWN, timeout=1.0)
    return reply is not None and not reply.startswith(b"-")


def command(port: int, request: bytes, timeout: float) -> bytes | None:
    """Send one RESP request on a fresh connection; the reply's first bytes, None if unreachable."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request)
            return sock.recv(256)
    except OSError:
        return None


def terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()  # no-op on a process already reaped
    wait_exit(proc, 5.0)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    # Poll rather than Popen.wait(): poll never blocks on Popen's internal lock.
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
    return True


def alive(pid: int) -> bool:
    if not _PROCFS:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, but someone else's
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # A zombie has exited (the AOF is closed) and only waits to be reaped by its parent.
    # The state follows the parenthesised command name, which may itself contain ")".
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def server_port(pid: int, data_dir: Path) -> int | None:
    """The port of pid if it is a live redis/valkey server on data_dir, else None."""
    if not alive(pid):
        return None
    args = argv(pid)
    if not args or Path(args[0]).name not in SERVER_NAMES:
        return None
    if option(args, "--dir") != str(data_dir):
        return None
    port = option(args, "--port")
    return int(port) if port is not None and port.isdigit() else None


def option(argv: list[str], name: str) -> str | None:
    try:
        return argv[argv.index(name) + 1]
    except (ValueError, IndexError):
        return None


def argv(pid: int) -> list[str]:
    if not _PROCFS:
        # ps joins argv with spaces: good enough for our own space-free options; a data
        # dir with spaces is then not recognised, which errs towards leaving a process alone.
        found = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return found.stdout.split()
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def read_pid(pidfile: Path) -> int | None:
    try:
        record = json.loads(pidfile.read_text())
    except (OSError, ValueError):
        return None  # missing or torn: nothing to adopt
    pid = record.get("pid") if isinstance(record, dict) else None
    return pid if isinstance(pid, int) and pid > 0 else None

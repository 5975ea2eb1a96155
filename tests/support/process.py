"""Running `python -m server` as a child process on a free port, for the process tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET = "process-test-secret-0123456789abcdef-0123"
READY_WITHIN = 60.0
EXIT_WITHIN = 20.0


class Server:
    """One `python -m server` child on a free port."""

    def __init__(self, data_dir: Path, log_path: Path, **extra: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETD_", "RAY_ADDRESS"))}
        env.update(
            TICKETD_PORT=str(self.port),
            TICKETD_DATA_DIR=str(data_dir),
            TICKETD_JWT_SECRET=SECRET,
            TICKETD_LOG_JSON="1",
        )
        env.update(extra)
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server"], cwd=REPO, env=env, stdout=log, stderr=log
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        with httpx.Client(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"server exited early:\n{self.log_tail()}"
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        pytest.fail(f"server not ready within {READY_WITHIN:g} s:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM, as a service manager would; the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=EXIT_WITHIN)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit within {EXIT_WITHIN:g} s of SIGTERM:\n{self.log_tail()}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=EXIT_WITHIN)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """start_server(data_dir, **env) -> a running server; every one is stopped at the end."""
    started: list[Server] = []

    def start(data_dir: Path, **env: str) -> Server:
        server = Server(data_dir, tmp_path / f"server-{len(started)}.log", **env)
        started.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def redis_servers_on(data_dir: Path) -> list[int]:
    """Pids of redis/valkey servers whose --dir lies in data_dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = Path(argv[0].decode(errors="replace")).name
        if name in ("redis-server", "valkey-server") and str(data_dir).encode() in b" ".join(argv):
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> dict[int, str]:
    """Every descendant of pid with its command line."""
    parent_of: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        names[int(entry.name)] = argv
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        at = frontier.pop()
        for child, parent in parent_of.items():
            if parent == at and child not in found:
                found[child] = names[child]
                frontier.append(child)
    return found


def workers_of(server: Server) -> list[int]:
    """Pids of the server's front-end worker processes."""
    return sorted(p for p, argv in descendants(server.proc.pid).items() if "server worker" in argv)


def alive(pids: list[int]) -> list[int]:
    """Those of pids still running (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out

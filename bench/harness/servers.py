"""A server under test as its own process on loopback: start, wait ready, read its metrics, stop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness.cpu import cmdline, descendants, start_time


class Server:
    """One server process in its own session, stopped (and its descendants) at the end."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self.base = f"http://127.0.0.1:{port}"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._family: dict[int, str | None] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            with contextlib.suppress(OSError):
                if http("GET", self.base + "/readyz", timeout=2)[0] == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready within {timeout:g} s:\n{self.tail()}")

    def remember_family(self) -> None:
        """Note descendants (Redis, Ray) now, so stop() can reap any that outlive the server."""
        for pid in descendants(self.pid):
            self._family[pid] = start_time(pid)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 30.0) -> None:
        self.remember_family()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # ticketd stops its Ray and Redis itself
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                print(f"  {self.name}: no exit after SIGTERM in {grace:g} s; SIGKILL")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what it started
        self.proc.wait(10)
        time.sleep(0.5)
        reaped = []
        for pid, started in self._family.items():
            if started is not None and start_time(pid) == started:  # same process, still alive
                name = cmdline(pid)[:60]
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    reaped.append(f"{pid} {name}")
        if reaped:
            print(f"  {self.name}: killed what it left behind: {'; '.join(reaped)}")


def http(
    method: str, url: str, body: Any = None, token: str | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def metrics(srv: Server) -> dict[str, float]:
    status, body = http("GET", srv.base + "/metrics")
    out: dict[str, float] = {}
    if status != 200:
        return out
    for line in body.decode().splitlines():
        if line.startswith("#") or "{" in line:
            continue
        name, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out

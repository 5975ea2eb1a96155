"""Start-up refusals (server/boot/preflight.py): one line naming what to change, exit 2, and all
of it before Ray starts. Real servers and real sockets; `python -m server` as run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from actors.storage.redis_server import find_server_binary
from actors.storage.valkey_cluster import LocalCluster, free_base_port
from server.boot import preflight
from server.boot.preflight import StartupError

REPO = Path(__file__).resolve().parents[2]
#: runs `python -m server` and records, at exit, whether Ray was ever imported
PROBE = """
import atexit, sys
atexit.register(lambda: open(sys.argv[1], "w").write(str("ray" in sys.modules)))
from server.__main__ import main
sys.exit(main([]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def raw_server(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """raw_server(*options) -> the URL of a plain server started with those options."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> str:
        port = _free_port()
        data = tmp_path / f"raw-{port}"
        data.mkdir()
        args = [find_server_binary(), "--port", str(port), "--bind", "127.0.0.1"]
        args += ["--dir", str(data), "--save", "", *options]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return f"redis://127.0.0.1:{port}/0"
            except OSError:
                assert time.monotonic() < deadline, "raw server did not start"
                time.sleep(0.02)

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _refused(tmp_path: Path, **env: str) -> tuple[str, float, bool]:
    """Run the server with TICKETD_* overrides; (its stderr, seconds, whether ray imported)."""
    flag = tmp_path / "ray-imported"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETD_", "RAY_ADDRESS"))}
    base["TICKETD_DATA_DIR"] = str(tmp_path / "data")
    base["TICKETD_PORT"] = str(_free_port())
    base["TICKETD_JWT_SECRET"] = "preflight-secret-0123456789abcdef-0123456"
    base.update(env)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(flag)],
        cwd=REPO,
        env=base,
        capture_output=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 2, (done.returncode, done.stderr.decode())
    assert done.stdout == b""
    return done.stderr.decode(), took, flag.read_text() == "True"


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ticketd: cannot start: "), err
    return lines[0]


def test_unreachable_external_redis_is_refused_in_one_line_before_ray(tmp_path: Path) -> None:
    url = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
    err, took, ray_imported = _refused(tmp_path, TICKETD_REDIS_URL=url)
    line = _one_line(err)
    assert "TICKETD_REDIS_URL=redis://:***@127.0.0.1:" in line and "is unreachable" in line
    assert "hunter2" not in line, "no password in a log line"
    assert not ray_imported and took < 10, took


def test_redis_without_aof_is_refused_unless_volatile_is_allowed(
    tmp_path: Path, raw_server: Callable[..., str]
) -> None:
    url = raw_server("--appendonly", "no")
    err, _, ray_imported = _refused(tmp_path, TICKETD_REDIS_URL=url)
    line = _one_line(err)
    assert f"TICKETD_REDIS_URL={url}" in line and "appendonly no" in line
    assert "TICKETD_ALLOW_VOLATILE=1" in line and not ray_imported
    warning = preflight.check_redis(url, allow_volatile=True)
    assert warning is not None and "appendonly no" in warning


def test_redis_asking_for_a_password_is_refused_naming_the_url(
    tmp_path: Path, raw_server: Callable[..., str]
) -> None:
    url = raw_server("--appendonly", "yes", "--requirepass", "s3cret")
    line = _one_line(_refused(tmp_path, TICKETD_REDIS_URL=url)[0])
    assert "TICKETD_REDIS_URL" in line and "password" in line
    wrong = url.replace("redis://", "redis://:nope@")
    line = _one_line(_refused(tmp_path, TICKETD_REDIS_URL=wrong)[0])
    assert "refused ticketd's credentials" in line and "nope" not in line


def test_durable_redis_passes_and_weak_fsync_is_a_warning(raw_server: Callable[..., str]) -> None:
    assert (
        preflight.check_redis(raw_server("--appendonly", "yes", "--appendfsync", "always"), False)
        is None
    )
    warning = preflight.check_redis(raw_server("--appendonly", "yes"), False)  # everysec
    assert warning is not None and "'everysec'" in warning


def test_a_taken_port_is_refused_before_ray(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        err, _, ray_imported = _refused(tmp_path, TICKETD_PORT=str(port))
    line = _one_line(err)
    assert f"TICKETD_PORT={port} is already in use" in line and not ray_imported


def test_an_unreachable_ray_address_is_refused_before_ray(tmp_path: Path) -> None:
    address = f"127.0.0.1:{_free_port()}"
    err, _, ray_imported = _refused(tmp_path, TICKETD_RAY_ADDRESS=address)
    line = _one_line(err)
    assert f"TICKETD_RAY_ADDRESS={address!r} does not answer" in line and not ray_imported


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    err, _, ray_imported = _refused(tmp_path, TICKETD_DATA_DIR=str(blocker / "data"))
    line = _one_line(err)
    assert "TICKETD_DATA_DIR=" in line and "not a writable directory" in line
    assert not ray_imported


def test_an_embedded_redis_that_cannot_start_is_one_line_with_its_reason(tmp_path: Path) -> None:
    aof = tmp_path / "data" / "redis" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("not a manifest\n")
    err, _, _ = _refused(tmp_path)
    line = _one_line(err)
    assert "the embedded Redis in" in line and "Invalid AOF manifest file format" in line
    assert "TICKETD_REDIS_URL" in line


@pytest.mark.parametrize(
    ("text", "version"), [("7.2.4", (7, 2, 4)), ("6.2.14", (6, 2, 14)), ("8.0-rc1", (8, 0))]
)
def test_parse_version(text: str, version: tuple[int, ...]) -> None:
    assert preflight.parse_version(text) == version


def test_versions_older_than_7_are_refused_by_the_rule() -> None:
    assert preflight.parse_version("6.2.14") < preflight.MIN_REDIS
    assert preflight.parse_version("7.0.0") >= preflight.MIN_REDIS
    # the embedded server (Valkey reports redis_version 7.2.4) passes
    assert preflight.parse_version("7.2.4") >= preflight.MIN_REDIS


def test_check_redis_reports_an_old_server(
    raw_server: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # no Redis 6 binary here: raise the bar above the real server's version instead
    url = raw_server("--appendonly", "yes")
    with redis.Redis.from_url(url) as client:
        real = str(client.info("server")["redis_version"])
    monkeypatch.setattr(preflight, "MIN_REDIS", (99, 0))
    with pytest.raises(StartupError, match=rf"is Redis {real}; ticketd needs Redis >= 99.0"):
        preflight.check_redis(url, allow_volatile=False)


def test_a_redis_cluster_is_checked_primary_by_primary_and_for_its_replicas(
    tmp_path: Path,
) -> None:
    # a one-node cluster: its bus port (port + 10000) must be free too
    cluster = LocalCluster(tmp_path / "cluster", free_base_port(1), primaries=1, replicas=0)
    cluster.start()
    try:
        assert preflight.check_redis(cluster.url, allow_volatile=False) is None
        # every booking must reach a replica that is not there: refused at start-up
        with pytest.raises(StartupError, match="has 0 replicas linked and TICKETD_REDIS_REP"):
            preflight.check_redis(cluster.url, allow_volatile=False, replicas=1)
        # a primary that would lose acknowledged bookings is named
        cluster.nodes[0].client().config_set("appendonly", "no")
        with pytest.raises(StartupError, match=r"the cluster.s primary 127\.0\.0\.1:.*AOF"):
            preflight.check_redis(cluster.url, allow_volatile=False)
    finally:
        cluster.stop()

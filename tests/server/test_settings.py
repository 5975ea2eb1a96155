"""Settings come from TICKETD_* variables; bad ones fail at start with what to change."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from server.settings import ConfigError, Settings


def test_defaults_match_the_contract() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.redis_url, s.hold_seconds, s.ray_address) == (
        "127.0.0.1",
        8000,
        None,
        600.0,
        None,
    )
    assert s.data_dir == Path("data")
    assert s.route_nodes == {}
    assert s.gc_freeze_seconds == 1.0


def test_route_nodes_are_ray_labels() -> None:
    s = Settings.from_env({"TICKETD_ROUTE_NODES": "ticketd-routes=yes, zone = b"})
    assert s.route_nodes == {"ticketd-routes": "yes", "zone": "b"}


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TICKETD_PORT": "eighty"}, "TICKETD_PORT='eighty' is not an integer"),
        ({"TICKETD_PORT": "70000"}, "TICKETD_PORT=70000 is out of range"),
        ({"TICKETD_HOLD_SECONDS": "soon"}, "TICKETD_HOLD_SECONDS='soon' is not a number"),
        ({"TICKETD_BATCHING": "maybe"}, "TICKETD_BATCHING='maybe' must be 1 or 0"),
        ({"TICKETD_BATCH_LINGER_MS": "-1"}, "TICKETD_BATCH_LINGER_MS=-1.0 is out of range"),
        ({"TICKETD_REDIS_URL": "localhost:6379"}, "must start with redis://"),
        ({"TICKETD_JWT_SECRET": "short"}, "at least 32 bytes"),
        ({"TICKETD_CLUSTER_SECRET": "short"}, "TICKETD_CLUSTER_SECRET must be at least 32"),
        ({"TICKETD_PLANE_TRANSPORT": "udp"}, "TICKETD_PLANE_TRANSPORT='udp' must be one of"),
        ({"TICKETD_PLANE_REQUEST_TIMEOUT": "0"}, "TICKETD_PLANE_REQUEST_TIMEOUT=0.0 is out"),
        ({"TICKETD_ROUTE_NODES": "routes"}, "TICKETD_ROUTE_NODES='routes': 'routes' is not"),
        ({"TICKETD_GC_FREEZE_SECONDS": "-1"}, "TICKETD_GC_FREEZE_SECONDS=-1.0 is out of range"),
    ],
)
def test_bad_configuration_names_the_variable_to_fix(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        Settings.from_env(env)


def test_missing_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    s = Settings.from_env({"TICKETD_DATA_DIR": str(tmp_path)})
    first = s.with_secret().jwt_secret
    assert len(first.encode()) >= 32
    assert s.with_secret().jwt_secret == first  # the same on the next start
    mode = stat.S_IMODE((tmp_path / "jwt_secret").stat().st_mode)
    assert mode == 0o600


def test_missing_cluster_secret_is_generated_apart_from_the_jwt_secret(tmp_path: Path) -> None:
    s = Settings.from_env({"TICKETD_DATA_DIR": str(tmp_path)}).with_secret()
    assert len(s.cluster_secret.encode()) >= 32 and s.cluster_secret != s.jwt_secret
    again = Settings.from_env({"TICKETD_DATA_DIR": str(tmp_path)}).with_secret()
    assert again.cluster_secret == s.cluster_secret
    assert stat.S_IMODE((tmp_path / "cluster_secret").stat().st_mode) == 0o600
    given = "c" * 32
    env = {"TICKETD_DATA_DIR": str(tmp_path), "TICKETD_CLUSTER_SECRET": given}
    assert Settings.from_env(env).with_secret().cluster_secret == given

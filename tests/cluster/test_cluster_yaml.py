"""cluster.yaml passes the checks `ray up` runs and deploys ticketd as docs/deploy.md says."""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.commands import _bootstrap_config
from ray.autoscaler._private.util import prepare_config, validate_config

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAML = REPO / "cluster.yaml"

Config = dict[str, Any]


def ray_up_checks(config: Config) -> Config:
    """Run what `ray up` runs before touching a machine; returns the resolved config.

    `_bootstrap_config` is the step of `create_or_update_cluster` (the body of
    `ray up`) that fills in the provider's defaults and calls `validate_config`
    (Ray's JSON schema plus its cross-field checks). No config cache: a stale
    one in the temp dir must not answer for the file under test.
    """
    return _bootstrap_config(copy.deepcopy(config), no_config_cache=True)


def pinned_ray(text: str) -> str:
    """The version in the first `ray==X` or `ray[extras]==X` pin of `text`."""
    match = re.search(r"\bray(?:\[[\w,]+\])?==([\w.]+)", text)
    assert match, f"no ray pin in {text!r}"
    return match.group(1)


def aws_example() -> Config:
    """The commented-out AWS block of cluster.yaml, as YAML."""
    text = CLUSTER_YAML.read_text()
    block = re.search(r"^# BEGIN aws-example\n(.*?)^# END aws-example$", text, re.M | re.S)
    assert block, "cluster.yaml lost its AWS example markers"
    lines = [line.removeprefix("#").removeprefix(" ") for line in block.group(1).splitlines()]
    example: Config = yaml.safe_load("\n".join(lines))
    return example


@pytest.fixture
def config() -> Config:
    """A fresh parse of cluster.yaml, so no test sees another's edits."""
    parsed: Config = yaml.safe_load(CLUSTER_YAML.read_text())
    return parsed


def test_ray_up_accepts_cluster_yaml(config: Config) -> None:
    resolved = ray_up_checks(config)

    assert resolved["provider"]["type"] == "local"
    (node_type,) = resolved["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == 2
    # Not in the schema, but the local provider's state file asserts on it later.
    ips = [config["provider"]["head_ip"], *config["provider"]["worker_ips"]]
    assert len(set(ips)) == len(ips), "head and workers need distinct IPs"


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda c: c.update(head_start_commands=["true"]), id="unknown-field"),
        pytest.param(
            lambda c: c.update(head_start_ray_commands="ray start --head"), id="string-not-list"
        ),
        pytest.param(lambda c: c["auth"].update(ssh_password="x"), id="unknown-auth-field"),
    ],
)
def test_ray_up_rejects_a_broken_copy(config: Config, break_it: Any) -> None:
    break_it(config)

    with pytest.raises(jsonschema.ValidationError):
        ray_up_checks(config)


def test_aws_example_passes_rays_schema(config: Config) -> None:
    # The cloud provider's own bootstrap needs AWS credentials and network, so
    # this runs the provider-independent part: defaults, then the validator.
    for key in ("provider", "auth"):
        del config[key]
    config.update(aws_example())

    validate_config(prepare_config(config))


def test_ray_pin_matches_the_project_and_the_validator(config: Config) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    project_pin = pinned_ray(" ".join(project["dependencies"]))
    setup = " ".join(config["setup_commands"])

    assert pinned_ray(setup) == project_pin == "2.60.0"
    # `ray up` and the nodes must run the same Ray as the validator used here.
    assert ray.__version__ == project_pin
    assert "ray[default]==2.60.0" in setup, "nodes need the dashboard and autoscaler extras"


@pytest.mark.parametrize("commands", ["head_start_ray_commands", "worker_start_ray_commands"])
def test_every_node_starts_ray_then_its_front_end(config: Config, commands: str) -> None:
    steps = config[commands]
    index = {
        name: next(i for i, cmd in enumerate(steps) if needle in cmd)
        for name, needle in {
            "stop front end": "node.sh frontend stop",
            "stop ray": "node.sh ray stop",
            "start ray": "node.sh ray start",
            "start front end": "node.sh frontend start",
        }.items()
    }
    front_end = steps[index["start front end"]]

    assert list(index.values()) == sorted(index.values()), index
    assert "TICKETD_RAY_ADDRESS=auto" in front_end
    assert "TICKETD_HOST=0.0.0.0" in front_end
    start_ray = steps[index["start ray"]]
    if commands == "head_start_ray_commands":
        assert "--head --port=6379" in start_ray
    else:
        assert "--address=$RAY_HEAD_IP:6379" in start_ray


def test_ray_auth_mode_is_token_everywhere_ray_runs(config: Config) -> None:
    starts = [
        cmd
        for key in ("head_start_ray_commands", "worker_start_ray_commands")
        for cmd in config[key]
        if " start" in cmd
    ]
    shells = [cmd for cmd in config["setup_commands"] if "bashrc" in cmd]

    assert len(starts) == 4 and len(shells) == 1
    for cmd in starts + shells:
        # Exactly "token": Ray 2.60 reads any other value, typos too, as disabled.
        assert re.findall(r"RAY_AUTH_MODE=([\w-]+)", cmd) == ["token"], cmd
    assert config["file_mounts"]["~/.ray/auth_token"], "every node needs the cluster's token"


def test_node_script_and_env_example_exist(config: Config) -> None:
    node_sh = REPO / "deploy" / "node.sh"

    assert node_sh.stat().st_mode & 0o111, "cluster.yaml runs deploy/node.sh directly"
    env_example = (REPO / "deploy" / "ticketd.env.example").read_text()
    for name in ("TICKETD_REDIS_URL", "TICKETD_JWT_SECRET", "TICKETD_CLUSTER_SECRET"):
        assert re.search(rf"^{name}=", env_example, re.M), name
    assert config["file_mounts"]["~/ticketd"] == "."


def test_head_gets_the_health_check_settings_the_cluster_test_uses(config: Config) -> None:
    # one file, read by cluster.yaml's head `ray start` and by tests/cluster/cluster_scenario.py
    path = REPO / "deploy" / "ray_system_config.json"
    settings = json.loads(path.read_text())
    assert set(settings) == {
        "health_check_period_ms",
        "health_check_timeout_ms",
        "health_check_failure_threshold",
    }
    # every key is one of Ray's own config names (a typo would be ignored silently)
    from ray._raylet import Config as RayConfig

    for key, value in settings.items():
        assert isinstance(getattr(RayConfig, key)(), int) and isinstance(value, int), key
    head = [c for c in config["head_start_ray_commands"] if "ray start --head" in c]
    assert len(head) == 1
    assert '--system-config="$(cat ~/ticketd/deploy/ray_system_config.json)"' in head[0]
    workers = " ".join(config["worker_start_ray_commands"])
    assert "--system-config" not in workers, "only the head's GCS runs health checks"

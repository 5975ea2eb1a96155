"""A route actor runs at a higher CPU priority where the OS allows (ActorConfig.niceness)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.actors import actor_config, actor_pid, create_route, route_actor, route_def

pytestmark = [
    pytest.mark.usefixtures("ray_local"),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc"),
]


def _niceness(pid: int) -> set[int]:
    """The niceness of every thread of pid (Linux keeps one per thread)."""
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        # field 19 of stat, counted after the command name's closing parenthesis
        out.add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
    return out


def _may_raise_priority() -> bool:
    probe = "import os; os.setpriority(os.PRIO_PROCESS, 0, -5)"
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


async def test_a_route_actor_runs_at_the_configured_niceness_where_allowed(
    redis_url: str, route_id_factory: Callable[[], str]
) -> None:
    if not _may_raise_priority():
        pytest.skip("this user may not raise a process's priority (root or CAP_SYS_NICE)")
    route = await create_route(redis_url, route_def(route_id_factory()))
    config = actor_config(redis_url)
    async with route_actor(route.route_id, config) as handle:
        # every thread, not only the one that ran the constructor: Ray starts its
        # workers at niceness 15, threads and all
        assert _niceness(await actor_pid(handle)) == {config.niceness}

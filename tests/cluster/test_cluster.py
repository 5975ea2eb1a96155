"""Scale-out (docs/architecture.md): route actors spread over Ray nodes and survive losing them.

The cluster runs in tests/cluster/cluster_scenario.py, in a subprocess: this pytest session may
already hold a local Ray of its own, and one process can be the driver of only one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.http import AppFactory, Ids, Tokens

SCENARIO = Path(__file__).with_name("cluster_scenario.py")
#: routes of a killed node serve again within 10 s (issue 12's bound; GCS health checks of
#: deploy/ray_system_config.json)
MAX_RECOVERY_CRASH = 10.0
#: routes of a frozen node serve again elsewhere within 15 s, while it is still frozen (the
#: freeze lasts 20 s): issue 12's bound. Quiet runs on this 2-core machine, with the
#: scenario's own load on the same cores: 9.5-12.6 s (docs/benchmarks.md, "Cluster: a
#: killed and a frozen node"), most of it Ray starting a worker process per moved actor
MAX_RECOVERY_FREEZE = 15.0


def _run_scenario(out: Path, *flags: str, timeout: float = 330.0) -> dict[str, Any]:
    cmd = [sys.executable, str(SCENARIO), "--out", str(out)]
    cmd += ["--max-recovery-crash", str(MAX_RECOVERY_CRASH)]
    cmd += ["--max-recovery-freeze", str(MAX_RECOVERY_FREEZE)]
    proc = subprocess.Popen([*cmd, *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the scenario then stops its front ends, cluster and Redis
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    tail = "\n".join(output.decode(errors="replace").splitlines()[-30:])
    assert out.exists(), f"scenario wrote no result (exit {proc.returncode}):\n{tail}"
    res: dict[str, Any] = json.loads(out.read_text())
    res["_exit"], res["_tail"] = proc.returncode, tail
    return res


def _summary(res: dict[str, Any]) -> str:
    drop = ("outage_trace", "_tail", "front_end_log_tails")
    short = {k: v for k, v in res.items() if k not in drop}
    for phase in ("crash", "freeze"):
        if isinstance(short.get(phase), dict):
            short[phase] = {k: v for k, v in short[phase].items() if k != "outage_trace"}
    return f"{json.dumps(short, indent=1)}\n{res['_tail']}"


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_routes_spread_and_survive_a_killed_and_a_frozen_node_under_load(tmp_path: Path) -> None:
    res = _run_scenario(tmp_path / "result.json")
    why = _summary(res)
    assert "error" not in res, why
    # (a) placement: 6 routes on 3 nodes, 2 each; a node that joins takes the new ones
    assert res["routes_per_node_before"] == [2, 2, 2], why
    assert res["join"]["new_routes_on_joined_node"] >= 2, why
    # (b) no false death: heavy load alone declares no node dead, nor does the whole run
    # declare dead any node but the two victims
    assert res["busy"]["requests"] > 1000 and res["busy"]["nodes_declared_dead"] == [], why
    assert res["false_node_deaths"] == [], why
    # (c) a killed node's routes serve again within 10 s, a frozen node's within 15 s,
    # through both front ends; the frozen node's old actors exit once it wakes
    crash, freeze = res["crash"], res["freeze"]
    assert crash["moved_routes"] and crash["old_actors_exited"], why
    assert crash["recovery_seconds"] is not None, why
    assert crash["recovery_seconds"] <= MAX_RECOVERY_CRASH, why
    assert freeze["moved_routes"] and freeze["old_actors_exited"], why
    assert freeze["recovery_seconds"] is not None, why
    assert freeze["recovery_seconds"] <= MAX_RECOVERY_FREEZE, why
    assert freeze["frozen_for_seconds"] > freeze["recovery_seconds"], why
    # (d) nothing acknowledged lost, nothing sold twice, no retry booked twice
    assert res["acknowledged"] > 500, why
    assert res["lost"] == 0 and res["double_sold"] == 0 and res["duplicated"] == 0, why
    assert res["front_ends_agree"] and res["routes_now_on_live_nodes"], why
    assert res["indeterminate_unresolved"] == 0 and res["routes_serving"], why
    # while a killed node's actor is unreachable, every client gets an answer, and the
    # 503s come at once (one call in flight probes the actor)
    outage = crash["phases"]["outage/moved"]
    assert "0" not in outage["statuses"], why
    if outage["median_503_latency_s"] is not None:
        assert outage["median_503_latency_s"] < 1.0, why
    assert res["_exit"] == 0 and res["failures"] == [], why


async def test_retry_through_another_front_end_answers_the_first_result(
    app_factory: AppFactory, token: Tokens, route_id_factory: Ids
) -> None:
    # a client whose answer was lost retries with the same key; a load balancer sends the
    # retry to another front end, whose availability snapshot already says sold out
    first = await app_factory()
    second = await app_factory(availability_refresh=30.0)
    rid = route_id_factory()
    route = {
        "train": rid.split("-")[0],
        "date": "2026-12-01",
        "stations": ["A", "B"],
        "coaches": [{"number": "01", "class": "second", "rows": 1, "letters": "A"}],
    }
    r = await first.post("/v1/routes", json=route, headers={"Authorization": token("ops", True)})
    assert r.status_code == 201, r.text
    body = {"from": "A", "to": "B", "class": "second", "passengers": [{"name": "Li", "id": "1"}]}
    headers = {"Authorization": token("li"), "Idempotency-Key": "once"}
    booked = await first.post(f"/v1/routes/{rid}/bookings", json=body, headers=headers)
    assert booked.status_code == 201, booked.text
    seen = await second.get(f"/v1/routes/{rid}/availability", params={"from": "A", "to": "B"})
    assert seen.json()["availability"] == {"second": 0}
    retry = await second.post(f"/v1/routes/{rid}/bookings", json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.json() == booked.json()

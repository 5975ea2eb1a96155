"""A short nemesis run with a fixed seed: every fault kind once, under a flash sale, on a
local cluster (Redis, a Ray head and two nodes, two front-end workers), audited clean.

It runs `python -m loadgen.nemesis` in a subprocess: this pytest session may hold a local
Ray of its own, and a process can drive only one. The long randomized soak is
`make chaos` (docs/benchmarks.md has its figures).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from loadgen.nemesis.schedule import KINDS

REPO = Path(__file__).resolve().parents[2]
SEED = 20261206


@pytest.mark.slow
@pytest.mark.timeout(330)
def test_a_fixed_seed_schedule_of_every_fault_kind_audits_clean(tmp_path: Path) -> None:
    out = tmp_path / "nemesis.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TICKETD_", "RAY_"))}
    cmd = [sys.executable, "-m", "loadgen.nemesis", "--seed", str(SEED), "--duration", "50",
           "--faults", str(len(KINDS)), "--report", str(out)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # it stops its cluster, front end and Redis
        output, _ = proc.communicate(timeout=60)
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    report = json.loads(out.read_text())
    assert report["seed"] == SEED and f"--seed {SEED}" in report["replay"]
    # every kind injected once (none skipped for want of a target)
    assert report["faults_by_kind"] == dict.fromkeys(sorted(KINDS), 1), report["faults"]
    audit = report["audit"]
    assert audit["ok"] and audit["checked"] > 1000, audit
    assert audit["lost"] == audit["double_sold"] == audit["phantom"] == audit["duplicated"] == 0
    verdict = report["verdict"]
    assert verdict["ok"] and verdict["silent"] == 0 and verdict["bad_answers"] == 0, verdict
    assert all(r["ok"] for r in verdict["recoveries"]) and len(verdict["recoveries"]) == 7
    kill = next(f for f in report["faults"] if f["kind"] == "fe-kill")
    assert kill["replaced_after"] is not None, "the killed front-end worker was replaced"
    assert Path(report["plot"]).stat().st_size > 10_000
    assert "PASSED" in text

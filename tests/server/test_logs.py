"""JSON log lines stay whole when several processes share one stderr (the front end's
workers inherit the supervisor's): each line is one write, never a message and then its
newline, which another process's line could fall between."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINES = 3000
SCRIPT = f"""
import structlog
from server.logs import configure
configure(json=True)
log = structlog.get_logger("ticketd.test")
for n in range({LINES}):
    log.info("a line of a busy worker", n=n, pad="x" * 120)
"""


def test_workers_sharing_stderr_never_break_each_others_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "shared.log"
    with open(out, "wb") as shared:
        # unbuffered, as the supervisor starts its workers (PYTHONUNBUFFERED=1)
        procs = [
            subprocess.Popen([sys.executable, "-u", "-c", SCRIPT], cwd=REPO, stderr=shared)
            for _ in range(3)
        ]
        for p in procs:
            assert p.wait(60) == 0
    lines = out.read_text().splitlines()
    broken = [ln for ln in lines if not ln.startswith("{") or not ln.endswith("}")]
    assert broken == [], broken[:3]
    assert len(lines) == 3 * LINES
    assert all(json.loads(ln)["event"] == "a line of a busy worker" for ln in lines)

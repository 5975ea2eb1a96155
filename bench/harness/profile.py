"""py-spy a ticketd's front end and one of its route actors under the durable load."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cpu import cmdline, descendants, py_spy_argv
from harness.paths import LUA
from harness.servers import Server
from harness.workload import Result

if TYPE_CHECKING:
    from harness.scenarios import Bench


def profile(bench: Bench, res: Result, srv: Server) -> None:
    """py-spy the front end and one route actor under the same load as the measurement."""
    a = bench.args
    out = Path(a.profile)
    out.mkdir(parents=True, exist_ok=True)
    family = descendants(srv.pid)
    actors = [p for p in family if "RouteActor" in cmdline(p)]
    # the front end is a worker when ticketd runs several (the supervisor only waits)
    workers = [p for p in family if "-m server worker" in cmdline(p)]
    targets = {"server": workers[0] if workers else srv.pid}
    if actors:
        targets["actor"] = actors[0]
    secs = a.profile_seconds
    print(f"  profiling {secs:g} s: {targets} ...", flush=True)
    load = subprocess.Popen(
        [a.wrk, f"-t{a.threads}", f"-c{a.connections}", f"-d{secs + 4:g}s",
         f"--timeout={a.timeout:g}s", "-s", str(LUA), srv.base, "--", str(bench.cfg),
         f"p{res.key[:2]}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        time.sleep(2)
        spies = {
            name: subprocess.Popen(
                py_spy_argv(a.py_spy, pid, secs, out / f"{res.key}-{name}.txt", a.profile_rate),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, pid in targets.items()
        }
        for name, spy in spies.items():
            _, err = spy.communicate(timeout=secs + 60)
            if spy.returncode != 0:
                print(f"  py-spy {name} failed: {err.strip()[-500:]}")
    finally:
        text, _ = load.communicate(timeout=secs + 60)
    line = next((x for x in text.splitlines() if x.startswith("WRKJSON ")), "")
    if line:
        data = json.loads(line.removeprefix("WRKJSON "))
        non201 = sum(v for k, v in data["statuses"].items() if k != "201")
        print(
            f"  under the profiler: {data['statuses'].get('201', 0) / secs:,.0f} x 201/s "
            f"(approx.), non-201 {non201}"
        )
        if non201 and res.error is None:
            res.error = f"{non201} non-201 answers during profiling"
    from pyspy_summary import summarise

    for name in targets:
        path = out / f"{res.key}-{name}.txt"
        if path.exists():
            summary = summarise(path, top=15, seconds=secs, rate=a.profile_rate)
            (out / f"{res.key}-{name}-summary.txt").write_text(summary)
            bench.profiles.append(summary)
            print(summary)

"""What the booking benchmarks send: the routes, the Lua baseline's config, and wrk runs
with their results."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.paths import LUA

CLASS = "second"


SEATS_PER_ROUTE = 5000  # the route limit: 40 coaches x 25 rows x ABCDF


USER_CAP = 1000  # TICKETD_USER_CAP's maximum


HEADROOM = 1.25  # plan capacity for 1.25x the measured ceiling


def route_defs(
    routes: int, stations: int, train: str = "B", coaches: int = 40, rows: int = 25
) -> list[dict[str, Any]]:
    """`routes` routes of `stations` stations and coaches x rows x ABCDF seats of one class
    each (the defaults: 5,000, the route limit)."""
    cars = [
        {"number": f"{c + 1:02d}", "class": CLASS, "rows": rows, "letters": "ABCDF"}
        for c in range(coaches)
    ]
    return [
        {
            "train": f"{train}{k + 1}",
            "date": "2026-12-01",
            "stations": [f"S{s:02d}" for s in range(stations)],
            "coaches": cars,
        }
        for k in range(routes)
    ]


def seats(defn: dict[str, Any]) -> int:
    """Seats on sale on one route."""
    return sum(c["rows"] * len(c["letters"]) for c in defn["coaches"])


def route_id(defn: dict[str, Any]) -> str:
    return f"{defn['train']}-{defn['date'].replace('-', '')}"


def lua_config(
    path: Path, defs: list[dict[str, Any]], tokens: list[str], whole_route: bool = False
) -> Path:
    """The config bench/wrk/booking.lua reads: one-segment trips, or first to last station."""

    def lua_list(items: list[str]) -> str:
        return "{" + ",".join(json.dumps(x) for x in items) + "}"

    paths = [f"/v1/routes/{route_id(d)}/bookings" for d in defs]
    path.write_text(
        "return {\n"
        f"  paths = {lua_list(paths)},\n"
        f"  stations = {lua_list(defs[0]['stations'])},\n"
        f"  class = {json.dumps(CLASS)},\n"
        f"  tokens = {lua_list(tokens)},\n"
        f"  whole_route = {'true' if whole_route else 'false'},\n"
        "}\n"
    )
    return path


@dataclass
class Run:
    """One wrk measurement."""

    requests: int
    seconds: float
    statuses: dict[int, int]
    errors: dict[str, int]
    latency_ms: dict[str, float]
    retry_after: int
    raw: str

    @property
    def created(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def non201(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != 201)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def wrk(
    args: argparse.Namespace,
    base: str,
    cfg: Path,
    tag: str,
    seconds: float,
    connections: int | None = None,
    log: Path | None = None,
) -> Run:
    conns = connections or args.connections
    cmd = [
        args.wrk, f"-t{min(args.threads, conns)}", f"-c{conns}", f"-d{seconds:g}s", "--latency",
        f"--timeout={args.timeout:g}s", "-s", str(LUA), base, "--", str(cfg), tag,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if log is not None:
        log.write_text(shlex.join(cmd) + "\n" + out.stdout + out.stderr)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("WRKJSON "))
    lat = {k: v / 1000 for k, v in data["latency_us"].items()}
    # cross-check against wrk's own --latency table (its p50/p99 use the same histogram)
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out.stdout, re.M):
        ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        lat[f"wrk_p{pct}"] = ms
    return Run(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        statuses={int(k): v for k, v in data["statuses"].items()},
        errors=data["errors"],
        latency_ms=lat,
        retry_after=data["retry_after"],
        raw=out.stdout,
    )


@dataclass
class Result:
    key: str
    label: str
    run: Run | None = None
    notes: list[str] = field(default_factory=list)
    #: the statuses the rate counts (a sellout counts its 409 sold-out answers too)
    counted: tuple[int, ...] = (201,)
    #: the only statuses a sound run may see (None: any; overload judges its own)
    allowed: tuple[int, ...] | None = (201,)
    error: str | None = None
    #: CPU seconds used during the measurement, by part (see CPU_PARTS)
    cpu: dict[str, float] = field(default_factory=dict)
    #: the processes that served HTTP, as the table shows them ("2", "1 (main process)")
    workers: str = ""
    #: seats the audit found sold after a sellout (None: no audit)
    sold: int | None = None

    @property
    def answers(self) -> int:
        """Answers of the counted statuses."""
        return sum(self.run.statuses.get(c, 0) for c in self.counted) if self.run else 0

    @property
    def rate(self) -> float:
        return self.answers / self.run.seconds if self.run else 0.0

    @property
    def cpu_per_answer_us(self) -> float | None:
        """The server's CPU (all its processes, not wrk) per counted answer, in µs."""
        if not self.cpu or not self.answers:
            return None
        return 1e6 * sum(v for k, v in self.cpu.items() if k != "wrk") / self.answers

    @property
    def ok(self) -> bool:
        if self.error or self.run is None:
            return False
        if self.run.requests == 0:
            return False
        if self.allowed is not None:
            unexpected = set(self.run.statuses) - set(self.allowed)
            return not unexpected and self.run.socket_errors == 0
        return True

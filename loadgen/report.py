"""The run's report: a JSON file, a PNG beside it, and a summary table on the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec
from rich.console import Group
from rich.table import Table
from rich.text import Text

from loadgen.audit import AuditResult
from loadgen.stats import Latency, Schedule, Second


class Report(msgspec.Struct, kw_only=True):
    """Everything a run measured and found; `audit.ok` decides the exit code."""

    scenario: str
    url: str
    mode: str
    concurrency: int
    rate: float | None
    seed: int
    started_at: str
    duration_s: float
    requests: int
    answered: int
    throughput_rps: float
    latency_ms: Latency
    latency_by_op_ms: dict[str, Latency]
    status_counts: dict[str, int]
    op_counts: dict[str, int]
    acknowledged_bookings: int
    indeterminate: int
    routes: list[str]
    seats: dict[str, int]
    seats_left: dict[str, dict[str, int] | None]
    schedule: Schedule | None
    timeline: list[Second]
    audit: AuditResult
    plot: str | None = None


R = TypeVar("R", bound=msgspec.Struct)


def plot_path(report_path: Path) -> Path:
    """Where the PNG goes: beside the report, same stem."""
    return report_path.with_suffix(".png")


def write_report(report: msgspec.Struct, path: Path) -> None:
    """Write a report (any scenario's) as indented JSON, creating the directory if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")


def read_report(path: Path, kind: type[R]) -> R:
    """Load a report of `kind` written by `write_report`."""
    return msgspec.json.decode(path.read_bytes(), type=kind)


def summary(report: Report) -> Group:
    """The end-of-run table: load, latency, statuses and the audit verdict."""
    load = Table(title=f"loadgen {report.scenario} ({report.mode} loop)", show_header=False)
    load.add_column(style="bold")
    load.add_column(justify="right")
    lat = report.latency_ms
    rows = [
        ("duration", f"{report.duration_s:.1f} s"),
        ("requests", f"{report.requests:,} ({report.answered:,} answered)"),
        ("throughput", f"{report.throughput_rps:,.0f} answers/s"),
        ("latency p50 / p90", f"{lat.p50:,.2f} / {lat.p90:,.2f} ms"),
        ("latency p99 / p99.9", f"{lat.p99:,.2f} / {lat.p999:,.2f} ms"),
        ("latency max", f"{lat.max:,.2f} ms"),
        ("acknowledged bookings", f"{report.acknowledged_bookings:,}"),
        ("indeterminate writes", f"{report.indeterminate:,}"),
    ]
    if report.schedule is not None:
        rows.append(("late / unsent", f"{report.schedule.late:,} / {report.schedule.unsent:,}"))
    for name, value in rows:
        load.add_row(name, value)
    for key, count in sorted(report.status_counts.items()):
        load.add_row(f"status {key}", f"{count:,}")
    for rid, left in report.seats_left.items():
        shown = "?" if left is None else ", ".join(f"{k} {v}" for k, v in sorted(left.items()))
        load.add_row(f"seats left {rid}", f"{shown} (of {report.seats.get(rid, 0):,})")

    audit = report.audit
    verdict = Table(title="audit", show_header=False)
    verdict.add_column(style="bold")
    verdict.add_column(justify="right")
    verdict.add_row("checked", f"{audit.checked:,} acknowledged, {audit.server_bookings:,} listed")
    for name in ("lost", "changed", "double_sold", "phantom", "duplicated", "invalid"):
        count = getattr(audit, name)
        verdict.add_row(name, Text(f"{count:,}", style="red bold" if count else "green"))
    applied = f"{audit.indeterminate:,} ({audit.indeterminate_applied:,} bookings applied)"
    verdict.add_row("indeterminate writes", applied)
    result = Text("PASS", style="green bold") if audit.ok else Text("FAIL", style="red bold")
    verdict.add_row("result", result)
    notes = [Text(f"  {line}", style="red") for line in audit.details[:10]]
    return Group(load, verdict, *notes)

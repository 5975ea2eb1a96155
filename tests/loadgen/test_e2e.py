"""loadgen against a fake ticketd on 127.0.0.1: the audit passes an honest server and catches
one that double-sells, loses or invents bookings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from support.fakes.fake_ticketd import FakeTicketd

from loadgen import Config, main, run

SECRET = "loadgen-e2e-secret-0123456789abcdef"
DURATION = 1.5


def _config(url: str, **overrides: Any) -> Config:
    base = Config(
        url=url,
        jwt_secret=SECRET,
        duration=DURATION,
        concurrency=6,
        routes=2,
        seed=7,
        progress=False,
        timeout=2.0,
    )
    return dataclasses.replace(base, **overrides)


def _argv(url: str, report: Path, *extra: str) -> list[str]:
    return [
        "--url", url, "--jwt-secret", SECRET, "--duration", str(DURATION),
        "--concurrency", "6", "--routes", "2", "--report", str(report), "--no-progress", *extra,
    ]  # fmt: skip


def test_honest_server_passes_and_exits_zero(tmp_path: Path) -> None:
    report_path = tmp_path / "honest.json"

    with FakeTicketd("honest", SECRET) as url:
        code = main(_argv(url, report_path, "--seats", "12"))

    report = json.loads(report_path.read_text())
    assert code == 0
    assert report["audit"]["ok"] is True
    assert report["acknowledged_bookings"] > 0
    assert report["audit"]["checked"] == report["acknowledged_bookings"]
    # Small trains sell out: the flash sale ends in sold-out answers and waitlisting.
    assert report["status_counts"].get("409 sold-out", 0) > 0
    assert report_path.with_suffix(".png").stat().st_size > 0
    for key in ("p50", "p90", "p99", "p999", "max"):
        assert report["latency_ms"][key] > 0


def test_double_selling_server_fails_the_audit_and_exits_nonzero(tmp_path: Path) -> None:
    report_path = tmp_path / "double.json"

    with FakeTicketd("double-sell", SECRET) as url:
        code = main(_argv(url, report_path))

    audit = json.loads(report_path.read_text())["audit"]
    assert code != 0
    assert audit["ok"] is False
    assert audit["double_sold"] > 0


async def test_losing_server_reports_lost_bookings() -> None:
    with FakeTicketd("lose", SECRET) as url:
        report = await run(_config(url))

    assert not report.audit.ok
    assert report.audit.lost > 0
    assert report.audit.double_sold == 0


async def test_server_inventing_bookings_reports_phantoms() -> None:
    with FakeTicketd("phantom", SECRET) as url:
        report = await run(_config(url, scenario="mixed"))

    assert not report.audit.ok
    assert report.audit.phantom == 2  # one per route
    assert report.audit.lost == 0


async def test_timed_out_bookings_are_indeterminate_and_pass_when_applied_once() -> None:
    with FakeTicketd("slow", SECRET) as url:
        report = await run(_config(url, timeout=0.3))

    assert report.status_counts.get("timeout", 0) > 0
    assert report.audit.indeterminate > 0
    assert report.audit.indeterminate_applied > 0
    assert report.audit.ok, report.audit.details


async def test_open_loop_run_against_honest_server_passes(tmp_path: Path) -> None:
    with FakeTicketd("honest", SECRET) as url:
        report = await run(_config(url, scenario="steady", rate=100.0, report=tmp_path / "s.json"))

    assert report.mode == "open" and report.schedule is not None
    assert report.audit.ok, report.audit.details
    assert (tmp_path / "s.png").exists()


def test_unreachable_server_exits_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeTicketd("honest", SECRET) as url:
        pass  # the port is now closed

    code = main(_argv(url, tmp_path / "r.json"))

    assert code == 3
    assert f"cannot reach ticketd at {url}" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_route_the_server_refuses_to_create_exits_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeTicketd("honest", "another-secret-0123456789abcdef0123") as url:
        code = main(_argv(url, tmp_path / "r.json"))

    assert code == 3
    assert "could not create route L" in capsys.readouterr().err

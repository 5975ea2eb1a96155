"""`python -m loadgen --scenario waiting-room` against a real ticketd on a loopback socket: a
small crowd queues, the sale sells out, the audit passes and the JSON and PNG are written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import JWT_SECRET
from support.live import live_app

from loadgen import main
from loadgen.report import read_report
from loadgen.waiting.audit import NOT_ENOUGH
from loadgen.waiting.report import WaitingReport

pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def live_url(redis_url: str, ray_local: None, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:  # fmt: skip
    """A live ticketd in a thread of its own (its own event loop), so that loadgen runs as
    from the command line."""
    from server.settings import Settings

    s = Settings(redis_url=redis_url, jwt_secret=JWT_SECRET,
                 data_dir=tmp_path_factory.mktemp("waiting-room-run"))  # fmt: skip
    with live_app(s) as url:
        yield url


def test_a_small_crowd_audits_clean_and_writes_the_report_and_plot(
    live_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "waiting.json"
    argv = [
        "--url", live_url, "--jwt-secret", JWT_SECRET, "--scenario", "waiting-room",
        "--early", "240", "--late", "80", "--tight-bots", "4", "--skip-bots", "3",
        "--routes", "2", "--seats", "15", "--opens-in", "4", "--late-window", "3",
        "--concurrency", "32", "--duration", "120", "--seed", "22", "--report", str(path),
        "--no-progress",
    ]  # fmt: skip

    code = main(argv)

    report = read_report(path, WaitingReport)
    audit = report.audit
    assert code == 0, audit.details
    assert audit.ok and report.finished
    assert report.sale is not None and report.sale.state == "sold-out"
    # every queueing user learnt a place; the pre-queue is too small to judge rho
    assert audit.unplaced == 0
    assert audit.pre_opening.verdict == NOT_ENOUGH and audit.pre_opening.n >= 200
    assert audit.post_opening_joiners >= 60 and audit.causal_pairs > 0
    assert audit.place_inversions == 0 and audit.admission_inversions == 0
    # the bots tried and got nothing
    assert audit.skip_bot_attempts > 0 and audit.skip_bot_bookings == 0
    assert report.status_counts.get("book 403 not-admitted", 0) >= audit.skip_bot_attempts
    assert report.status_counts.get("poll 429 polling-too-fast", 0) > 0  # the tight pollers
    # the sale sold exactly its seats, each to one admitted user
    assert audit.seats_sold == audit.capacity == sum(report.seats.values())
    assert audit.booking.ok and report.acknowledged_bookings == audit.capacity
    assert audit.admitted_users >= audit.capacity
    # the timeline shows the queue filling, admissions and bookings
    assert max(s.queue for s in report.timeline) >= 200
    assert sum(s.admitted for s in report.timeline) == audit.admitted_users
    assert sum(s.bookings for s in report.timeline) == audit.capacity
    png = path.with_suffix(".png")
    assert report.plot == str(png) and png.stat().st_size > 10_000


def test_help_lists_the_waiting_room(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0

    out = capsys.readouterr().out
    for text in ("waiting-room", "--early", "--admit-per-second", "Spearman"):
        assert text in out


def test_options_that_do_not_apply_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--url", "http://127.0.0.1:9", "--jwt-secret", JWT_SECRET, "--scenario",
            "waiting-room"]  # fmt: skip

    assert main([*argv, "--rate", "50"]) == 2
    assert "--rate and --max-requests do not apply to waiting-room" in capsys.readouterr().err
    assert main([*argv, "--opens-in", "30", "--duration", "40"]) == 2
    assert "--duration must exceed --opens-in plus --late-window" in capsys.readouterr().err

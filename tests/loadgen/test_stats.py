"""Latency percentiles and the per-second timeline."""

from __future__ import annotations

import pytest

from loadgen.stats import Stats


def test_percentiles_come_from_the_hdr_histogram_in_milliseconds() -> None:
    stats = Stats(start=100.0)
    for ms in range(1, 1001):  # 1 ms .. 1000 ms, one each
        stats.record("book", "201", intended=100.0, ended=100.0 + ms / 1000, answered=True)

    latency = stats.latency()

    assert latency.p50 == pytest.approx(500, rel=0.01)
    assert latency.p90 == pytest.approx(900, rel=0.01)
    assert latency.p99 == pytest.approx(990, rel=0.01)
    assert latency.p999 == pytest.approx(999, rel=0.01)
    assert latency.max == pytest.approx(1000, rel=0.01)
    assert stats.latency_by_op()["book"].count == 1000


def test_timeline_has_a_row_per_second_including_empty_ones() -> None:
    stats = Stats(start=0.0)
    stats.record("availability", "200", intended=0.0, ended=0.010, answered=True)
    stats.record("availability", "200", intended=2.0, ended=2.5, answered=True)
    stats.record("availability", "200", intended=2.0, ended=2.6, answered=True)

    timeline = stats.timeline()

    assert [(s.t, s.requests) for s in timeline] == [(0, 1), (1, 0), (2, 2)]
    assert timeline[0].p50_ms == pytest.approx(10, rel=0.01)
    assert timeline[1].p99_ms == 0.0
    assert stats.recent_rate(now=3.2) == 2.0


def test_timeouts_count_in_latency_but_not_as_answers() -> None:
    stats = Stats(start=0.0)
    stats.record("book", "201", intended=0.0, ended=0.005, answered=True)
    stats.record("book", "timeout", intended=0.0, ended=2.0, answered=False)
    stats.record("book", "connect-error", intended=0.0, ended=0.001, answered=False)
    stats.count("book", "aborted")

    assert stats.requests == 4 and stats.answered == 1
    assert stats.latency().count == 2 and stats.latency().max == pytest.approx(2000, rel=0.01)
    assert stats.status == {"201": 1, "timeout": 1, "connect-error": 1, "aborted": 1}
    assert sum(s.requests for s in stats.timeline()) == 1

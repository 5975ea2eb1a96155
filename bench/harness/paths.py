"""Where the benchmarks find the repo, their wrk scripts and the report they write."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


BENCH = ROOT / "bench"


LUA = BENCH / "wrk" / "booking.lua"


DOCS = ROOT / "docs" / "benchmarks.md"

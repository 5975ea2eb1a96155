"""`python -m loadgen`: parse the command line, run, print the summary, exit by the audit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import uvloop
from rich.console import Console

from loadgen.config import DEFAULT_DURATION, SCENARIOS, STEADY_DEFAULT_RATE, Config
from loadgen.errors import LoadgenError
from loadgen.report import plot_path, summary
from loadgen.runner import run
from loadgen.waiting import cli as waiting_cli
from loadgen.waiting import config as waiting_defaults
from loadgen.waiting.config import WaitingConfig


class _Verdict(Protocol):
    @property
    def ok(self) -> bool: ...


class _Audited(Protocol):
    """A scenario's report: its audit passed or not."""

    @property
    def audit(self) -> _Verdict: ...


R = TypeVar("R", bound=_Audited)

EXIT_PASSED = 0
EXIT_AUDIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SETUP_FAILED = 3
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Drive flash-sale load at a ticketd server, then audit it Jepsen-style: every acknowledged
booking must still be there with the same seats, no seat may be sold twice on one segment, no
booking may appear that loadgen never asked for, and no request may be applied twice.

It mints JWTs with the server's secret (an admin to create and audit routes, many users to
book), creates fresh routes for this run (train L<4 digits>, a random day 1–4 months out),
drives load for --duration seconds, and writes a JSON report plus a PNG of throughput and
p50/p99 per second beside it."""

EPILOG = f"""\
scenarios:
  flash-sale  a few routes open at once; Zipf-skewed demand, groups of 1-5, 10% waitlist
              requests, half the holds paid, a tenth cancelled; trains sized (8 seats per
              worker-second, or --seats) to sell out during the run
  mixed       steady traffic: 60% availability, 30% bookings, 10% cancels of its own
  steady      the mixed traffic open-loop at --rate (default {STEADY_DEFAULT_RATE:g}/s) to read
              latency without coordinated omission
{waiting_cli.EPILOG}

load modes:
  closed loop (default): --concurrency workers, each sends when its last request ends.
  open loop (--rate R): R requests/s on a fixed schedule, latency timed from each request's
  intended send time. At most --concurrency are in flight; past that the schedule waits for a
  free connection and the wait counts as latency. The report's `schedule` counts requests
  sent >10 ms late and those never sent before the deadline.

exit status:
  0 the audit passed; 1 it failed (or could not read the server back); 2 bad arguments;
  3 the server is unreachable or refused to create a route; 130 interrupted."""


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m loadgen`."""
    p = argparse.ArgumentParser(
        prog="python -m loadgen",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", required=True, help="ticketd base URL, e.g. http://127.0.0.1:8000")
    p.add_argument(
        "--jwt-secret",
        default=os.environ.get("TICKETD_JWT_SECRET"),
        help="the server's HS256 secret (default: $TICKETD_JWT_SECRET)",
    )
    p.add_argument(
        "--scenario", choices=SCENARIOS, default="flash-sale", help="default: %(default)s"
    )
    p.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help=f"seconds of load (default: {DEFAULT_DURATION:g}; waiting-room: the most it may "
        f"take, default {waiting_defaults.DEFAULT_DURATION:g})",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=64,
        metavar="C",
        help="closed loop: workers; open loop: most requests in flight (default: %(default)s)",
    )
    p.add_argument("--rate", type=float, metavar="R", help="open loop at R requests/s")
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="JSON report path; the PNG goes beside it (default: reports/<scenario>-<time>.json)",
    )
    p.add_argument("--routes", type=int, metavar="N", help="routes to create (scenario default)")
    p.add_argument("--seats", type=int, metavar="N", help="seats per route (scenario default)")
    p.add_argument("--seed", type=int, metavar="N", help="workload random seed (default: random)")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="per request (default: %(default)s)",
    )
    p.add_argument("--max-requests", type=int, metavar="N", help="stop after N requests")
    p.add_argument("--no-progress", action="store_true", help="no live progress display")
    waiting_cli.add_arguments(p)
    return p


def config_from(args: argparse.Namespace, *, interactive: bool) -> Config:
    """The run's Config from parsed arguments; ValueError says what to change."""
    report = args.report
    if report is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        report = Path("reports") / f"{args.scenario}-{stamp}.json"
    duration = args.duration
    if duration is None:
        waiting = args.scenario == "waiting-room"
        duration = waiting_defaults.DEFAULT_DURATION if waiting else DEFAULT_DURATION
    return Config(
        url=args.url,
        jwt_secret=args.jwt_secret or "",
        scenario=args.scenario,
        duration=duration,
        concurrency=args.concurrency,
        rate=args.rate,
        report=report,
        routes=args.routes,
        seats=args.seats,
        seed=args.seed,
        timeout=args.timeout,
        max_requests=args.max_requests,
        progress=interactive and not args.no_progress,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run loadgen with `argv` (default: sys.argv[1:]); the process exit status."""
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    console = Console()
    try:
        config = config_from(args, interactive=console.is_terminal)
        if config.scenario == "waiting-room":
            waiting = waiting_cli.waiting_config(args, config)
            return _waiting_room(waiting, console)
    except ValueError as exc:
        p.print_usage(sys.stderr)
        print(f"{p.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return _play(lambda: run(config), summary, config.report, console)


def _play(
    start: Callable[[], Coroutine[Any, Any, R]],
    render: Callable[[R], Any],
    path: Path | None,
    console: Console,
) -> int:
    """Run a scenario to its report, print its summary; the exit code by its audit."""
    try:
        report = uvloop.run(start())
    except LoadgenError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return EXIT_SETUP_FAILED
    except KeyboardInterrupt:
        print("loadgen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    console.print(render(report))
    if path is not None:
        console.print(f"report: {path}  plot: {plot_path(path)}")
    return EXIT_PASSED if report.audit.ok else EXIT_AUDIT_FAILED


def _waiting_room(config: WaitingConfig, console: Console) -> int:
    # Imported here: the other scenarios need none of its running parts.
    from loadgen.waiting import report as waiting_report
    from loadgen.waiting.runner import run as run_waiting

    return _play(lambda: run_waiting(config), waiting_report.summary, config.base.report, console)

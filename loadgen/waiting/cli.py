"""The command line's waiting-room options (`python -m loadgen --scenario waiting-room`)."""

from __future__ import annotations

import argparse

from loadgen.config import Config
from loadgen.waiting import config as defaults
from loadgen.waiting.config import WaitingConfig

EPILOG = f"""\
  waiting-room
              a sale behind ticketd's waiting room on --routes fresh trains
              (default {defaults.DEFAULT_ROUTES} x {defaults.DEFAULT_SEATS} seats): --early users
              join in the --opens-in seconds before it opens, --late ones in the --late-window
              after; all poll as advised and book one whole-journey seat once admitted. Bots:
              tight pollers, and queue-skippers booking with no, forged or borrowed admissions.
              Ends by itself once everyone is done (--duration caps it, default
              {defaults.DEFAULT_DURATION:g} s); --concurrency is its connection pool. Audit:
              Spearman's rho of the pre-queue's join order against its places (|rho| <= 0.05
              with 5,000 joiners or more), later joiners placed in join order, one place per
              user, no booking without an admission, bots gained nothing, the sale sold exactly
              its seats, plus the booking audit. The PNG shows queue length, admitted/s and
              bookings/s."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The waiting-room's own options, in a group of their own."""
    g = parser.add_argument_group("waiting-room")
    g.add_argument(
        "--early",
        type=int,
        default=defaults.DEFAULT_EARLY,
        metavar="N",
        help="users joining before the opening (default: %(default)s)",
    )
    g.add_argument(
        "--late",
        type=int,
        default=defaults.DEFAULT_LATE,
        metavar="N",
        help="users joining after it (default: %(default)s)",
    )
    g.add_argument(
        "--tight-bots",
        type=int,
        default=defaults.DEFAULT_TIGHT_BOTS,
        metavar="N",
        help="bots polling in a tight loop (default: %(default)s)",
    )
    g.add_argument(
        "--skip-bots",
        type=int,
        default=defaults.DEFAULT_SKIP_BOTS,
        metavar="N",
        help="bots booking without queueing (default: %(default)s)",
    )
    g.add_argument(
        "--opens-in",
        type=float,
        default=defaults.DEFAULT_OPENS_IN,
        metavar="S",
        help="seconds from the sale's creation to its opening (default: %(default)g)",
    )
    g.add_argument(
        "--late-window",
        type=float,
        default=defaults.DEFAULT_LATE_WINDOW,
        metavar="S",
        help="late users join within S s of the opening (default: %(default)g)",
    )
    g.add_argument(
        "--admit-per-second",
        type=float,
        metavar="R",
        help="a fixed admission rate (default: the server's automatic admission)",
    )


def waiting_config(args: argparse.Namespace, base: Config) -> WaitingConfig:
    """The run's WaitingConfig; ValueError says what to change."""
    if args.rate is not None or args.max_requests is not None:
        raise ValueError(
            "--rate and --max-requests do not apply to waiting-room: its users poll as "
            "advised; size it with --early, --late and --concurrency"
        )
    return WaitingConfig(
        base=base,
        early=args.early,
        late=args.late,
        tight_bots=args.tight_bots,
        skip_bots=args.skip_bots,
        opens_in=args.opens_in,
        late_window=args.late_window,
        admit_per_second=args.admit_per_second,
    )

"""A sale: which routes, when it opens, how fast it admits, and the states it goes
through (the contract's `POST/GET/PATCH /v1/sales`).

States: `scheduled` until `opens_at`, then `open` (admitting), `paused` (admission held
by the operator), `sold-out` (nothing left on its routes: everybody still waiting hears
it at once) and `closed` (for good). Until a sale is closed, booking one of its routes
needs an admission for it (none exists before the opening).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from msgspec import Meta

from server.waiting.policy import CLOSED, OPEN, PAUSED, SCHEDULED, SOLD_OUT

#: what an operator may ask for, from each state (the sale itself moves scheduled ->
#: open at its time, and open/paused -> sold-out when its routes sell out)
_ALLOWED: dict[str, frozenset[str]] = {
    SCHEDULED: frozenset({PAUSED, CLOSED}),
    OPEN: frozenset({PAUSED, CLOSED}),
    PAUSED: frozenset({OPEN, CLOSED}),
    SOLD_OUT: frozenset({CLOSED}),
    CLOSED: frozenset(),
}

RouteId = Annotated[str, Meta(pattern=r"^[A-Z0-9]{1,12}-[0-9]{8}$")]
Rate = Annotated[float, Meta(gt=0, le=100_000, description="Users admitted per second")]


class SaleIn(msgspec.Struct, forbid_unknown_fields=True):
    routes: Annotated[list[RouteId], Meta(min_length=1, max_length=100)]
    opens_at: dt.datetime
    #: null: automatic (as fast as the routes sell)
    admit_per_second: Rate | None = None


class SalePatch(msgspec.Struct, forbid_unknown_fields=True):
    state: Annotated[str, Meta(pattern="^(open|paused|closed)$")] | None = None
    admit_per_second: Rate | None = None


class BadSale(Exception):
    """A sale or a change of it that cannot be; the message says what to send instead."""


def check(sale: SaleIn, now: dt.datetime) -> SaleIn:
    """The sale as it will be kept; BadSale for one that cannot be."""
    if sale.opens_at.tzinfo is None:
        raise BadSale("Give opens_at with its time zone, e.g. 2026-12-01T08:00:00+08:00.")
    if len(set(sale.routes)) != len(sale.routes):
        raise BadSale("Name each route of the sale once.")
    if sale.opens_at < now - dt.timedelta(days=1):
        raise BadSale("opens_at is more than a day in the past; give the time it opens.")
    return sale


def effective(stored: str, opens_at: dt.datetime, now: dt.datetime) -> str:
    """The state a sale is in: a scheduled one is open from its time on."""
    if stored == SCHEDULED and now >= opens_at:
        return OPEN
    return stored


def transition(current: str, wanted: str) -> str:
    """The state an operator's PATCH leads to; BadSale for one that is not allowed."""
    if wanted == current:
        return current
    if wanted not in _ALLOWED[current]:
        if current == CLOSED:
            raise BadSale("This sale is closed; open a new one.")
        raise BadSale(
            f"A {current} sale cannot be made {wanted}; it can be made "
            f"{' or '.join(sorted(_ALLOWED[current]))}."
        )
    return wanted

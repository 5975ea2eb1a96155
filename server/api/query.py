"""Query parameters of the read endpoints: each at most once, each one the endpoint knows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from starlette.requests import Request

from server.api.problems import Problem

#: page sizes: default and most per page
ROUTES_PAGE = (100, 1000)
BOOKINGS_PAGE = (20, 100)
#: the most seats one booking may ask for (the `seats` search filter goes up to it)
MAX_PARTY = 5


def params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and each one this endpoint knows."""
    out: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise Problem(
                "validation",
                f"Unknown query parameter {name!r}; this endpoint takes {', '.join(allowed)}.",
            )
        if name in out:
            raise Problem("validation", f"Give the query parameter {name!r} only once.")
        out[name] = value
    return out


def date(value: str | None, required: bool) -> str | None:
    if value is None and not required:
        return None
    if not value:
        raise Problem("validation", "Give the travel date as ?date=YYYY-MM-DD.")
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.isoformat() != value:
        raise Problem("validation", f"Date {value!r} must be a calendar date as YYYY-MM-DD.")
    return value


def station(name: str, value: str | None) -> str:
    if not value or len(value) > 64:
        raise Problem(
            "validation", f"Give {name!r} as a station name of 1 to 64 characters, e.g. ?{name}=A."
        )
    return value


def whole(name: str, value: str | None, default: int, most: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise Problem("validation", f"{name!r} must be a whole number from 1 to {most}.")
    return int(value)


def cursor(value: str | None, valid: Callable[[str], bool]) -> str | None:
    # a cursor is the position a page ended at (a route id, or a list position): any value
    # of that shape is a place to start after
    if value is not None and not valid(value):
        raise _bad_cursor()
    return value


def _bad_cursor() -> Problem:
    return Problem(
        "validation",
        "This cursor was not handed out by this endpoint; pass the next_cursor of the "
        "previous page, or leave it out for the first page.",
    )

"""Factories for the pure-domain tests: routes, states and commands with sensible defaults.

Stations are named ``S0 … S(n-1)`` so a test can speak in station indexes; every
booking, key and passenger id is fresh unless a test passes its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from actors.domain.decide import Decision, Policy, decide, execute
from actors.domain.inventory import Inventory
from actors.domain.messages import Book, Cancel, Change, Confirm, Passenger, Sweep
from actors.domain.route import RouteDef
from actors.domain.state import RouteState

CoachSpec = tuple[str, str, int, str]  # (number, class, rows, letters)

POLICY = Policy(hold_seconds=600.0, user_cap=5)
ONE_COACH: tuple[CoachSpec, ...] = (("01", "second", 2, "AB"),)

_ids = itertools.count(1)


def fresh(prefix: str) -> str:
    """A process-unique id such as ``b17``."""
    return f"{prefix}{next(_ids)}"


def station_names(count: int) -> list[str]:
    return [f"S{k}" for k in range(count)]


def route_dict(**overrides: Any) -> dict[str, Any]:
    """A valid route definition in the contract's JSON shape, with fields overridden."""
    data: dict[str, Any] = {
        "train": "G101",
        "date": "2026-12-01",
        "stations": ["Beijing South", "Jinan West", "Nanjing South", "Shanghai Hongqiao"],
        "coaches": [
            {"number": "01", "class": "business", "rows": 3, "letters": "ACF"},
            {"number": "03", "class": "second", "rows": 18, "letters": "ABCDF"},
        ],
    }
    data.update(overrides)
    return data


def make_route(stations: int = 4, coaches: Iterable[CoachSpec] = ONE_COACH) -> RouteDef:
    """A validated route with stations S0… and the given (number, class, rows, letters)."""
    return RouteDef.from_dict(
        {
            "train": "T1",
            "date": "2026-12-01",
            "stations": station_names(stations),
            "coaches": [
                {"number": n, "class": k, "rows": r, "letters": letters}
                for n, k, r, letters in coaches
            ],
        }
    )


def make_state(stations: int = 4, coaches: Iterable[CoachSpec] = ONE_COACH) -> RouteState:
    """An empty route state (every seat free)."""
    return RouteState.empty(make_route(stations, coaches))


def make_inventory(stations: int = 4, coaches: Iterable[CoachSpec] = ONE_COACH) -> Inventory:
    return Inventory(make_route(stations, coaches))


def seat_at(inv: Inventory, coach: str, name: str) -> int:
    """Seat index of e.g. coach "01", seat "02A"."""
    for seat in inv.seats:
        if seat.coach == coach and seat.name == name:
            return seat.index
    raise KeyError(f"no seat {coach}/{name}")


def seat_names(inv: Inventory, seats: Iterable[int]) -> list[str]:
    """Seats as "coach/rowLetter", e.g. ["01/02A"], in the given order."""
    return [f"{inv.seats[s].coach}/{inv.seats[s].name}" for s in seats]


def passengers(count: int, ids: Sequence[str] | None = None) -> list[Passenger]:
    """`count` passengers with fresh ids, or with the given ids."""
    pids = list(ids) if ids is not None else [fresh("P") for _ in range(count)]
    return [Passenger(f"Passenger {pid}", pid) for pid in pids]


def book_cmd(
    i: int,
    j: int,
    *,
    n: int = 1,
    klass: str = "second",
    user: str = "alice",
    pids: Sequence[str] | None = None,
    letters: Sequence[str] = (),
    together: bool = False,
    waitlist: bool = False,
    key: str | None = None,
    booking_id: str | None = None,
    fingerprint: str = "fp",
) -> Book:
    """A Book command from station Si to Sj."""
    pax = passengers(n, pids)
    return Book(
        booking_id or fresh("b"),
        user,
        key or fresh("k"),
        fingerprint,
        f"S{i}",
        f"S{j}",
        klass,
        pax,
        list(letters),
        together,
        waitlist,
    )


def book(
    state: RouteState, i: int, j: int, *, now: float = 0.0, policy: Policy = POLICY, **kw: Any
) -> Decision:
    """Execute a booking from Si to Sj (see book_cmd for the keywords)."""
    return execute(state, book_cmd(i, j, **kw), policy, now)


def held_seats(state: RouteState, i: int, j: int, **kw: Any) -> list[int]:
    """Book and return the seats, failing the test if nothing was held."""
    d = book(state, i, j, **kw)
    assert d.kind == "created", d
    assert d.record is not None
    return list(d.record.seats)


def confirm(
    state: RouteState, bid: str, user: str = "alice", now: float = 0.0, policy: Policy = POLICY
) -> Decision:
    return execute(state, Confirm(bid, user), policy, now)


def cancel(
    state: RouteState, bid: str, user: str = "alice", now: float = 0.0, policy: Policy = POLICY
) -> Decision:
    return execute(state, Cancel(bid, user), policy, now)


def change(
    state: RouteState,
    bid: str,
    i: int,
    j: int,
    *,
    klass: str = "second",
    user: str = "alice",
    now: float = 0.0,
    policy: Policy = POLICY,
) -> Decision:
    return execute(state, Change(bid, user, f"S{i}", f"S{j}", klass), policy, now)


def sweep(state: RouteState, now: float, policy: Policy = POLICY) -> Decision:
    return execute(state, Sweep(), policy, now)


def preview_sweep(state: RouteState, now: float, policy: Policy = POLICY) -> Decision:
    """decide a Sweep without applying it."""
    return decide(state, Sweep(), policy, now)


def status(state: RouteState, bid: str) -> str:
    return state.bookings[bid].status


# ---- comparing states --------------------------------------------------------------


def live_holds(state: RouteState) -> set[tuple[float, str]]:
    """Heap entries that can still expire a booking (stale ones are skipped by Sweep)."""
    return {
        (deadline, bid)
        for deadline, bid in state.holds
        if state.bookings[bid].status == "held" and state.bookings[bid].hold_expires_at == deadline
    }


def assert_same_state(actual: RouteState, expected: RouteState) -> None:
    """Same seats, bookings (every field, in creation order), indexes and waitlist order."""
    assert actual.route == expected.route
    assert actual.inv.bits == expected.inv.bits
    for klass in expected.inv.classes:
        assert {m: set(b) for m, b in actual.inv.index[klass].items()} == {
            m: set(b) for m, b in expected.inv.index[klass].items()
        }
    assert list(actual.bookings) == list(expected.bookings)
    for bid, b in expected.bookings.items():
        assert actual.bookings[bid] == b, bid
    assert list(actual.waitlist) == list(expected.waitlist)
    assert actual.idem == expected.idem
    assert actual.by_passenger == expected.by_passenger
    assert actual.live_seats == expected.live_seats
    assert live_holds(actual) == live_holds(expected)
    assert actual.events_applied == expected.events_applied

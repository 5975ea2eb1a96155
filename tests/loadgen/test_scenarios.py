"""Scenarios and routes: fresh names, trains of the asked size, the demand each scenario makes."""

from __future__ import annotations

import dataclasses
from collections import Counter
from random import Random
from typing import Any

import jwt
import pytest

from loadgen.auth import Tokens
from loadgen.config import Config
from loadgen.routes import coaches, fresh_route, route_id, stations
from loadgen.scenarios import PLANS, Book, Cancel, Confirm, FlashSale, Mixed, Query, seats_per_route
from loadgen.wire import Booking, RouteDef


def _route(seats: int = 200, n: int = 5) -> RouteDef:
    route = fresh_route(n, seats)
    return RouteDef(
        train=route.train,
        date=route.date,
        stations=route.stations,
        coaches=route.coaches,
        route_id=route_id(route),
    )


@pytest.mark.parametrize("seats", [1, 10, 33, 1_000, 9_000])
def test_coaches_hold_at_least_the_seats_asked_for_and_at_most_a_row_more(seats: int) -> None:
    layout = coaches(seats)
    total = sum(c.rows * len(c.letters) for c in layout)

    assert seats <= total <= max(seats, 3) + 5
    assert [c.number for c in layout] == [f"{k:02d}" for k in range(1, len(layout) + 1)]
    assert all(1 <= c.rows <= 20 for c in layout)


def test_route_ids_are_train_and_date_and_differ_between_calls() -> None:
    ids = {route_id(fresh_route(5, 50)) for _ in range(50)}

    assert len(ids) >= 45
    assert all(rid.startswith("L") and len(rid) == len("L1234-20270101") for rid in ids)


def test_stations_keep_the_ends() -> None:
    assert stations(2) == ("Beijing South", "Shanghai Hongqiao")
    assert len(set(stations(8))) == 8


def test_flash_sale_demand_is_zipf_skewed_with_groups_of_one_to_five() -> None:
    routes = [_route() for _ in range(4)]
    workload = FlashSale(routes, Random(5), "123456", users=100)

    books = [op for op in (workload.next_op() for _ in range(4_000)) if isinstance(op, Book)]

    per_route = Counter(op.route_id for op in books)
    shares = [per_route[route_id(r)] for r in routes]
    assert shares == sorted(shares, reverse=True) and shares[0] > 2 * shares[-1]
    assert {len(op.request.passengers) for op in books} == {1, 2, 3, 4, 5}
    assert 0.05 < sum(bool(op.request.waitlist) for op in books) / len(books) < 0.15
    ids = [p.id for op in books for p in op.request.passengers]
    assert len(ids) == len(set(ids)) and all(len(i) == 18 and i.isdigit() for i in ids)
    assert len({op.key for op in books}) == len(books)


def test_flash_sale_pays_for_or_cancels_some_holds() -> None:
    route = _route()
    workload = FlashSale([route], Random(6), "123456", users=10)
    follow_ups = []
    for n in range(200):
        op = workload.next_op()
        if isinstance(op, Book):
            held = Booking(
                booking_id=f"B{n}",
                route_id=op.route_id,
                status="held",
                origin=op.request.origin,
                destination=op.request.destination,
                klass=op.request.klass,
            )
            workload.booked(op, held)
        else:
            follow_ups.append(op)

    kinds = Counter(type(op) for op in follow_ups)
    assert kinds[Confirm] > kinds[Cancel] > 0


def test_mixed_is_sixty_thirty_ten_and_cancels_only_its_own_bookings() -> None:
    route = _route(n=8)
    workload = Mixed([route], Random(7), "123456", users=10)
    kinds: Counter[type] = Counter()
    booked: set[str] = set()
    for n in range(5_000):
        op = workload.next_op()
        kinds[type(op)] += 1
        if isinstance(op, Book):
            booking_id = f"B{n}"
            booked.add(booking_id)
            reply = Booking(
                booking_id=booking_id,
                route_id=op.route_id,
                status="held",
                origin=op.request.origin,
                destination=op.request.destination,
                klass=op.request.klass,
            )
            workload.booked(op, reply)
        elif isinstance(op, Cancel):
            assert op.booking_id in booked
            booked.discard(op.booking_id)

    assert kinds[Query] / 5_000 == pytest.approx(0.6, abs=0.03)
    assert kinds[Book] / 5_000 == pytest.approx(0.3, abs=0.03)
    assert kinds[Cancel] / 5_000 == pytest.approx(0.1, abs=0.03)


def test_flash_sale_trains_grow_with_the_offered_load() -> None:
    plan = PLANS["flash-sale"]

    small = seats_per_route(plan, 4, concurrency=4, duration=2)
    large = seats_per_route(plan, 4, concurrency=256, duration=30)

    assert small == 16 and large == 5_000
    assert seats_per_route(PLANS["mixed"], 2, concurrency=256, duration=30) == 1_000


def test_tokens_carry_sub_role_and_expiry() -> None:
    secret = "scenario-test-secret-0123456789abcdef"
    tokens = Tokens(secret, now=1_000_000)

    def claims(token: str) -> dict[str, object]:
        decoded: dict[str, object] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"verify_exp": False}
        )
        return decoded

    assert claims(tokens.admin) == {"sub": "loadgen-admin", "role": "admin", "exp": 1_003_600}
    assert claims(tokens.user("u1")) == {"sub": "u1", "exp": 1_003_600}
    assert tokens.user("u1") is tokens.user("u1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "localhost:8000"}, "--url"),
        ({"jwt_secret": ""}, "JWT secret"),
        ({"scenario": "rush"}, "unknown scenario"),
        ({"duration": 0}, "--duration"),
        ({"concurrency": 0}, "--concurrency"),
        ({"rate": -1.0}, "--rate"),
        ({"seats": 100_000}, "--seats"),
    ],
)
def test_bad_settings_fail_with_a_sentence_naming_the_option(
    change: dict[str, Any], message: str
) -> None:
    valid = Config(url="http://127.0.0.1:8000", jwt_secret="s")
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(valid, **change)


def test_steady_is_open_loop_even_without_a_rate() -> None:
    config = Config(url="http://127.0.0.1:8000", jwt_secret="s", scenario="steady")

    assert config.effective_rate is not None
    assert Config(url="http://h:1", jwt_secret="s").effective_rate is None

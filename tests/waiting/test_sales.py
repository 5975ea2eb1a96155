"""A sale's definition and the states an operator may move it through."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from server.waiting import policy, sales
from server.waiting.sales import BadSale, SaleIn

NOW = dt.datetime(2026, 12, 1, 7, 0, tzinfo=dt.UTC)
AT_EIGHT = b'{"routes": ["G101-20261201"], "opens_at": "2026-12-01T08:00:00+08:00"}'


def test_a_sale_needs_routes_and_an_opening_time_and_may_set_a_rate() -> None:
    sale = sales.check(msgspec.json.decode(AT_EIGHT, type=SaleIn), NOW)
    assert sale.admit_per_second is None  # automatic
    fixed = msgspec.json.decode(AT_EIGHT[:-1] + b', "admit_per_second": 50}', type=SaleIn)
    assert fixed.admit_per_second == 50


@pytest.mark.parametrize(
    "body",
    [
        b'{"routes": [], "opens_at": "2026-12-01T08:00:00Z"}',
        b'{"routes": ["nope"], "opens_at": "2026-12-01T08:00:00Z"}',
        b'{"routes": ["G1-20261201"], "opens_at": "soon"}',
        b'{"routes": ["G1-20261201"], "opens_at": "2026-12-01T08:00:00Z", "admit_per_second": 0}',
        b'{"routes": ["G1-20261201"], "opens_at": "2026-12-01T08:00:00Z", "extra": 1}',
    ],
)
def test_a_malformed_sale_is_refused_by_its_type(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(body, type=SaleIn)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"routes": ["G1-20261201"], "opens_at": "2026-12-01T08:00:00"}', "time zone"),
        (b'{"routes": ["G1-20261201", "G1-20261201"], "opens_at": "2026-12-01T08:00:00Z"}',
         "once"),
        (b'{"routes": ["G1-20261201"], "opens_at": "2026-11-01T08:00:00Z"}', "past"),
    ],
)  # fmt: skip
def test_a_sale_that_cannot_be_says_what_to_send(body: bytes, why: str) -> None:
    with pytest.raises(BadSale, match=why):
        sales.check(msgspec.json.decode(body, type=SaleIn), NOW)


def test_a_scheduled_sale_is_open_from_its_time_on() -> None:
    eight = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    assert sales.effective(policy.SCHEDULED, eight, NOW) == policy.SCHEDULED
    assert sales.effective(policy.SCHEDULED, eight, eight) == policy.OPEN
    assert sales.effective(policy.PAUSED, eight, eight) == policy.PAUSED


def test_an_operator_pauses_resumes_and_closes_and_nothing_reopens_a_closed_sale() -> None:
    assert sales.transition(policy.OPEN, policy.PAUSED) == policy.PAUSED
    assert sales.transition(policy.PAUSED, policy.OPEN) == policy.OPEN
    assert sales.transition(policy.SOLD_OUT, policy.CLOSED) == policy.CLOSED
    assert sales.transition(policy.OPEN, policy.OPEN) == policy.OPEN
    with pytest.raises(BadSale, match="closed; open a new one"):
        sales.transition(policy.CLOSED, policy.OPEN)
    with pytest.raises(BadSale, match="cannot be made open"):
        sales.transition(policy.SOLD_OUT, policy.OPEN)

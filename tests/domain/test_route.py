"""Route definitions: validation sentences, route_id, seat naming, masks and pair indexes."""

from __future__ import annotations

from typing import Any

import pytest
from support.domain import make_route, route_dict

from actors.domain.errors import InvalidRoute
from actors.domain.route import MAX_SEATS, RouteDef, is_route_id, pair_index, trip_mask


def coach(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"number": "01", "class": "second", "rows": 2, "letters": "AB"}
    data.update(overrides)
    return data


def test_contract_example_builds_route_with_id_from_train_and_date() -> None:
    route = RouteDef.from_dict(route_dict())

    assert route.route_id == "G101-20261201"
    assert is_route_id(route.route_id)
    assert route.stations[0] == "Beijing South"
    assert route.segments == 3
    assert route.classes() == ["business", "second"]


def test_to_dict_round_trips_and_carries_route_id() -> None:
    route = RouteDef.from_dict(route_dict())

    data = route.to_dict()

    assert data == {**route_dict(), "route_id": "G101-20261201"}
    assert RouteDef.from_dict(data) == route


@pytest.mark.parametrize("value", ["G101-20261201", "D7-20260101", "ABCDEFGHIJKL-20261231"])
def test_is_route_id_accepts_train_dash_yyyymmdd(value: str) -> None:
    assert is_route_id(value)


@pytest.mark.parametrize(
    "value",
    ["G101", "G101-2026-12-01", "g101-20261201", "G101-2026120", "G101_20261201", "-20261201"],
)
def test_is_route_id_rejects_other_shapes(value: str) -> None:
    assert not is_route_id(value)


def test_given_route_id_must_match_train_and_date() -> None:
    with pytest.raises(InvalidRoute, match="does not match train and date"):
        RouteDef.from_dict(route_dict(route_id="G101-20261202"))


def test_seats_are_named_by_coach_and_zero_padded_row_and_letter() -> None:
    route = make_route(coaches=[("03", "second", 12, "ABCDF"), ("04", "first", 1, "AF")])

    seats = route.seats()

    assert len(seats) == 12 * 5 + 2
    assert [s.index for s in seats] == list(range(len(seats)))
    assert (seats[0].coach, seats[0].name) == ("03", "01A")
    assert (seats[32].coach, seats[32].name) == ("03", "07C")
    assert (seats[59].coach, seats[59].name) == ("03", "12F")
    assert [(s.coach, s.name, s.klass) for s in seats[60:]] == [
        ("04", "01A", "first"),
        ("04", "01F", "first"),
    ]


def test_trip_mask_covers_segments_from_i_to_j_minus_one() -> None:
    assert trip_mask(0, 1) == 0b1
    assert trip_mask(1, 3) == 0b110
    assert trip_mask(0, 4) == 0b1111


def test_pair_index_enumerates_the_upper_triangle_without_gaps() -> None:
    n = 6
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]

    assert [pair_index(i, j, n) for i, j in pairs] == list(range(len(pairs)))


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        ({"train": "g101"}, "Train 'g101' must be 1-12 capital letters or digits"),
        ({"train": ""}, "Train '' must be"),
        ({"date": "2026-02-30"}, "Date '2026-02-30' must be a calendar date as YYYY-MM-DD"),
        ({"date": "20261201"}, "Date '20261201' must be a calendar date"),
        ({"stations": ["Only"]}, "A route needs 2 to 64 stations"),
        ({"stations": [f"S{k}" for k in range(65)]}, "A route needs 2 to 64 stations"),
        ({"stations": ["A", " "]}, "Station names must be non-empty strings"),
        ({"stations": ["A", "x" * 65]}, "at most 64 chars"),
        ({"stations": ["A", 7]}, "Station names must be non-empty strings"),
        ({"stations": ["A", "B", "A"]}, "Station names must be unique along a route"),
        ({"coaches": []}, "A route needs 1 to 40 coaches"),
        ({"coaches": [coach(), coach()]}, "Coach numbers must be unique"),
        ({"coaches": [coach(number="A1")]}, "Coach number 'A1' must be 1-3 digits"),
        ({"coaches": [coach(number="1234")]}, "Coach number '1234' must be 1-3 digits"),
        ({"coaches": [coach(**{"class": "Second"})]}, "Class 'Second' must be lower-case"),
        ({"coaches": [coach(rows=0)]}, "Coach 01 must have 1 to 99 rows"),
        ({"coaches": [coach(rows=100)]}, "Coach 01 must have 1 to 99 rows"),
        ({"coaches": [coach(letters="AA")]}, "seat letters must be distinct capitals"),
        ({"coaches": [coach(letters="ab")]}, "seat letters must be distinct capitals"),
        ({"coaches": [coach(letters="")]}, "seat letters must be distinct capitals"),
        ({"coaches": [coach(rows="two")]}, "Route definition is malformed"),
        ({"coaches": [coach(rows=2.9)]}, "rows must be a whole number, not 2.9"),
        ({"coaches": [coach(rows=True)]}, "rows must be a whole number, not True"),
        ({"stations": "ABC"}, "stations must be a list of names, not str"),
        ({"coaches": [{"number": "01", "rows": 2, "letters": "AB"}]}, "malformed"),
    ],
)
def test_invalid_route_is_rejected_with_a_sentence_naming_the_problem(
    overrides: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(InvalidRoute) as caught:
        RouteDef.from_dict(route_dict(**overrides))

    assert sentence in str(caught.value)
    assert caught.value.type == "validation"
    assert str(caught.value).endswith(".")


def test_missing_field_is_rejected_as_malformed() -> None:
    data = route_dict()
    del data["stations"]

    with pytest.raises(InvalidRoute, match="Route definition is malformed"):
        RouteDef.from_dict(data)


def test_route_over_the_seat_limit_is_rejected_with_its_seat_count() -> None:
    coaches = [coach(number=f"{k:02d}", rows=99, letters="ABCDFGHJKL") for k in range(6)]

    with pytest.raises(InvalidRoute, match=f"at most {MAX_SEATS} seats; this has 5940"):
        RouteDef.from_dict(route_dict(coaches=coaches))


def test_route_of_exactly_the_limits_is_accepted() -> None:
    coaches = [coach(number=f"{k:02d}", rows=50, letters="ABCDFGHJKL") for k in range(10)]

    route = RouteDef.from_dict(route_dict(coaches=coaches, stations=[f"S{k}" for k in range(64)]))

    assert len(route.seats()) == MAX_SEATS
    assert route.segments == 63


# ---- the optional schedule ----------------------------------------------------------------

#: the contract example's four stations, running past midnight (GTFS-style 24:00+ times)
SCHEDULE = [
    {"arrive": None, "depart": "22:00"},
    {"arrive": "23:30", "depart": "23:32"},
    {"arrive": "24:40", "depart": "24:45"},
    {"arrive": "26:10", "depart": None},
]


def test_a_schedule_round_trips_and_a_route_without_one_is_unchanged() -> None:
    plain = RouteDef.from_dict(route_dict())
    timed = RouteDef.from_dict({**route_dict(), "schedule": SCHEDULE})
    assert "schedule" not in plain.to_dict()
    assert RouteDef.from_dict({**route_dict(), "schedule": None}) == plain
    assert timed.to_dict() == {**route_dict(), "route_id": timed.route_id, "schedule": SCHEDULE}
    assert RouteDef.from_dict(timed.to_dict()) == timed
    assert timed != plain  # a different definition: re-creating it is a conflict
    assert (timed.departure(1), timed.arrival(3)) == ("23:32", "26:10")
    assert (plain.departure(1), plain.arrival(3)) == (None, None)


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (SCHEDULE[:3], "one entry per station"),
        ([{**SCHEDULE[0], "depart": "8:00"}, *SCHEDULE[1:]], "must be HH:MM"),
        ([{**SCHEDULE[0], "depart": "48:00"}, *SCHEDULE[1:]], "must be HH:MM"),
        ([SCHEDULE[0], {"arrive": None, "depart": "23:32"}, *SCHEDULE[2:]], "arrival time"),
        ([SCHEDULE[0], {"arrive": "23:30", "depart": None}, *SCHEDULE[2:]], "departure time"),
        ([SCHEDULE[0], {"arrive": "21:30", "depart": "23:32"}, *SCHEDULE[2:]], "backwards"),
        ([*SCHEDULE[:3], {"arrive": "01:10", "depart": None}], "backwards"),
        ([{**SCHEDULE[0], "depart": 2200}, *SCHEDULE[1:]], "malformed"),
        ("22:00", "malformed"),
    ],
)
def test_a_bad_schedule_is_rejected_with_a_sentence(schedule: Any, words: str) -> None:
    with pytest.raises(InvalidRoute, match=words):
        RouteDef.from_dict({**route_dict(), "schedule": schedule})

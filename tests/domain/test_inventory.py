"""The seat map: exact availability, best-fit choice, letters, groups kept together."""

from __future__ import annotations

import pytest
from support.domain import make_inventory, seat_at, seat_names

from actors.domain.inventory import Inventory, InventoryCorrupt
from actors.domain.route import pair_index, trip_mask


def take(inv: Inventory, seats: str, i: int, j: int) -> None:
    """Occupy space-separated "coach/seat" names (e.g. "01/02A 01/02B") from Si to Sj."""
    inv.occupy([seat_at(inv, *name.split("/")) for name in seats.split()], i, j)


def chosen(inv: Inventory, i: int, j: int, count: int = 1, **kw: object) -> list[str] | None:
    found = inv.choose("second", i, j, count, **kw)  # type: ignore[arg-type]
    return None if found is None else seat_names(inv, found)


# ---- availability ------------------------------------------------------------------


def test_empty_route_offers_every_seat_of_the_class_on_every_trip() -> None:
    inv = make_inventory(5, [("01", "second", 2, "AB"), ("02", "first", 1, "AF")])

    assert inv.available("second", 0, 4) == 4
    assert inv.available("first", 1, 2) == 2
    assert inv.matrix("second") == [4] * 10


def test_occupied_segments_reduce_only_the_trips_that_overlap_them() -> None:
    inv = make_inventory(4, [("01", "second", 1, "AB")])

    take(inv, "01/01A", 1, 2)

    assert inv.available("second", 0, 1) == 2  # before the taken segment
    assert inv.available("second", 2, 3) == 2  # after it: the seat is reused
    assert inv.available("second", 0, 2) == 1
    assert inv.available("second", 1, 3) == 1
    assert inv.available("second", 0, 3) == 1


def test_availability_memo_is_invalidated_by_every_change() -> None:
    inv = make_inventory(3, [("01", "second", 1, "AB")])
    assert inv.available("second", 0, 2) == 2

    take(inv, "01/01A", 0, 1)
    assert inv.available("second", 0, 2) == 1
    assert inv.matrix("second") == [1, 1, 2]

    inv.release([seat_at(inv, "01", "01A")], 0, 1)
    assert inv.available("second", 0, 2) == 2
    assert inv.matrix("second") == [2, 2, 2]


def test_matrix_matches_available_for_every_station_pair() -> None:
    n = 6
    inv = make_inventory(n, [("01", "second", 2, "ABC")])
    take(inv, "01/01A", 0, 2)
    take(inv, "01/01A", 3, 5)
    take(inv, "01/01B", 1, 4)
    take(inv, "01/02C", 4, 5)

    matrix = inv.matrix("second")

    for i in range(n):
        for j in range(i + 1, n):
            assert matrix[pair_index(i, j, n)] == inv.available("second", i, j), (i, j)
    assert matrix[pair_index(2, 3, n)] == 5  # only 01B is busy on segment 2


def test_classes_are_counted_separately() -> None:
    inv = make_inventory(3, [("01", "first", 1, "AF"), ("02", "second", 1, "ABC")])

    take(inv, "01/01A 01/01F", 0, 2)

    assert inv.available("first", 0, 1) == 0
    assert inv.available("second", 0, 1) == 3
    assert inv.choose("first", 0, 1, 1) is None


# ---- occupy / release --------------------------------------------------------------


def test_release_returns_exactly_the_released_segments() -> None:
    inv = make_inventory(5, [("01", "second", 1, "A")])
    seat = seat_at(inv, "01", "01A")
    inv.occupy([seat], 0, 2)
    inv.occupy([seat], 2, 4)

    inv.release([seat], 0, 2)

    assert inv.bits[seat] == trip_mask(2, 4)
    assert inv.index["second"] == {trip_mask(2, 4): {seat: None}}
    assert inv.available("second", 0, 2) == 1
    assert inv.available("second", 1, 3) == 0


def test_release_of_everything_leaves_the_same_index_as_a_fresh_inventory() -> None:
    inv = make_inventory(4, [("01", "second", 2, "AB")])
    fresh = make_inventory(4, [("01", "second", 2, "AB")])
    take(inv, "01/01A 01/02B", 0, 3)

    inv.release([seat_at(inv, "01", "01A"), seat_at(inv, "01", "02B")], 0, 3)

    assert inv.bits == fresh.bits
    assert {m: set(b) for m, b in inv.index["second"].items()} == {0: set(range(4))}
    assert inv.matrix("second") == fresh.matrix("second")


def test_occupying_a_taken_segment_is_refused_as_corruption() -> None:
    inv = make_inventory(4)
    take(inv, "01/01A", 1, 3)

    with pytest.raises(InventoryCorrupt, match="already sold"):
        take(inv, "01/01A", 2, 3)


def test_releasing_a_free_segment_is_refused_as_corruption() -> None:
    inv = make_inventory(4)
    take(inv, "01/01A", 0, 2)

    with pytest.raises(InventoryCorrupt, match="not held"):
        inv.release([seat_at(inv, "01", "01A")], 1, 3)


def test_load_bits_rebuilds_index_and_availability() -> None:
    source = make_inventory(4, [("01", "second", 2, "AB")])
    take(source, "01/01B", 0, 2)
    take(source, "01/02A", 1, 3)
    target = make_inventory(4, [("01", "second", 2, "AB")])
    target.available("second", 0, 3)  # a stale memo must not survive the load

    target.load_bits(source.bits)

    assert target.bits == source.bits
    assert target.matrix("second") == source.matrix("second")
    assert target.available("second", 0, 3) == 2


def test_load_bits_with_the_wrong_seat_count_is_refused() -> None:
    inv = make_inventory(4)

    with pytest.raises(InventoryCorrupt, match="seat count"):
        inv.load_bits([0])


# ---- best fit ----------------------------------------------------------------------


def test_seat_touching_the_trip_on_the_left_is_preferred_over_an_empty_seat() -> None:
    inv = make_inventory(5, [("01", "second", 1, "AB")])
    take(inv, "01/01B", 0, 2)

    assert chosen(inv, 2, 3) == ["01/01B"]


def test_seat_touching_the_trip_on_the_right_is_preferred_over_an_empty_seat() -> None:
    inv = make_inventory(5, [("01", "second", 1, "AB")])
    take(inv, "01/01B", 3, 4)

    assert chosen(inv, 1, 3) == ["01/01B"]


def test_seat_whose_occupancy_does_not_touch_the_trip_is_not_preferred() -> None:
    inv = make_inventory(5, [("01", "second", 1, "AB")])
    take(inv, "01/01A", 0, 1)  # a gap at segment 1 separates it from trip 2-3
    take(inv, "01/01B", 1, 2)

    assert chosen(inv, 2, 3) == ["01/01B"]


def test_trip_from_the_origin_counts_the_route_start_as_touching() -> None:
    # 01A touches trip 0-1 on the right and the route start on the left: a perfect fit
    inv = make_inventory(4, [("01", "second", 1, "ABC")])
    take(inv, "01/01B", 2, 3)
    take(inv, "01/01C", 1, 3)

    assert chosen(inv, 0, 1) == ["01/01C"]


def test_trip_to_the_terminus_counts_the_route_end_as_touching() -> None:
    inv = make_inventory(4, [("01", "second", 1, "ABC")])
    take(inv, "01/01A", 0, 1)
    take(inv, "01/01C", 0, 2)

    assert chosen(inv, 2, 3) == ["01/01C"]


def test_seat_touching_both_sides_beats_seats_touching_one_side() -> None:
    inv = make_inventory(6, [("01", "second", 1, "ABC")])
    take(inv, "01/01A", 0, 2)  # touches trip 2-3 on the left, two segments
    take(inv, "01/01B", 1, 2)
    take(inv, "01/01B", 3, 4)  # touches both sides
    take(inv, "01/01C", 3, 5)  # touches on the right, two segments

    assert chosen(inv, 2, 3) == ["01/01B"]
    assert chosen(inv, 2, 3, 2) == ["01/01A", "01/01B"]


def test_left_and_right_touches_weigh_the_same_and_fuller_seat_breaks_the_tie() -> None:
    # 01A touches on the left with two busy segments, 01B on the right with one: touching
    # either side counts once, so the fuller seat wins (whatever side it touches)
    inv = make_inventory(6, [("01", "second", 1, "AB")])
    take(inv, "01/01A", 0, 2)
    take(inv, "01/01B", 3, 4)

    assert chosen(inv, 2, 3) == ["01/01A"]
    assert chosen(inv, 2, 3, letters=["A", "B"]) == ["01/01A"]


def test_best_fit_keeps_long_trips_sellable() -> None:
    # two seats, trips 0-1 and 1-2 sold one after the other: best fit stacks them on one
    # seat so the through trip 0-2 still has a seat
    inv = make_inventory(3, [("01", "second", 1, "AB")])
    first = inv.choose("second", 0, 1, 1)
    assert first is not None
    inv.occupy(first, 0, 1)

    second = inv.choose("second", 1, 2, 1)

    assert second == first
    inv.occupy(second, 1, 2)
    assert inv.available("second", 0, 2) == 1


# ---- choosing groups ---------------------------------------------------------------


def test_group_gets_all_its_seats_or_none() -> None:
    inv = make_inventory(3, [("01", "second", 1, "ABC")])
    take(inv, "01/01B", 1, 2)
    before = list(inv.bits)

    assert chosen(inv, 0, 2, 3) is None
    assert chosen(inv, 0, 2, 3, together=True) is None
    assert chosen(inv, 0, 2, 2) == ["01/01A", "01/01C"]
    assert inv.bits == before  # choosing never occupies


def test_known_sold_out_trip_answers_none_until_something_changes() -> None:
    inv = make_inventory(3, [("01", "second", 1, "A")])
    take(inv, "01/01A", 0, 2)
    assert inv.choose("second", 0, 1, 1) is None
    assert inv.known_short("second", 0, 1, 1)

    inv.release([seat_at(inv, "01", "01A")], 0, 2)

    assert not inv.known_short("second", 0, 1, 1)
    assert chosen(inv, 0, 1) == ["01/01A"]


def test_group_that_exactly_fits_is_seated_after_a_bigger_one_was_refused() -> None:
    # the refusal memoises "2 free": a request for exactly 2 must still be seated
    inv = make_inventory(3, [("01", "second", 1, "ABC")])
    take(inv, "01/01B", 0, 2)
    assert chosen(inv, 0, 2, 3) is None
    assert inv.known_short("second", 0, 2, 3)
    assert not inv.known_short("second", 0, 2, 2)

    assert chosen(inv, 0, 2, 2) == ["01/01A", "01/01C"]


def test_preferred_letter_is_honoured_when_free() -> None:
    inv = make_inventory(3, [("01", "second", 2, "ABCDF")])

    assert chosen(inv, 0, 1, letters=["F"]) == ["01/01F"]
    assert chosen(inv, 0, 1, 2, letters=["A", "F"]) == ["01/01A", "01/01F"]


def test_preferred_letters_fill_first_and_the_rest_of_the_group_sits_elsewhere() -> None:
    inv = make_inventory(3, [("01", "second", 1, "ABCDF")])

    assert chosen(inv, 0, 1, 3, letters=["A", "F"]) == ["01/01A", "01/01B", "01/01F"]


def test_preferred_letter_falls_back_to_another_seat_when_taken() -> None:
    inv = make_inventory(3, [("01", "second", 2, "AF")])
    take(inv, "01/01F 01/02F", 0, 2)

    assert chosen(inv, 0, 1, letters=["F"]) == ["01/01A"]
    assert chosen(inv, 0, 1, 2, letters=["F"], together=True) == ["01/01A", "01/02A"]


def test_together_prefers_a_single_row() -> None:
    inv = make_inventory(3, [("01", "second", 2, "ABCD")])
    take(inv, "01/01B 01/01D", 0, 2)

    assert chosen(inv, 0, 1, 3) == ["01/01A", "01/01C", "01/02A"]  # loose: seat order
    assert chosen(inv, 0, 1, 3, together=True) == ["01/02A", "01/02B", "01/02C"]


def test_together_prefers_one_row_over_two_adjacent_rows() -> None:
    inv = make_inventory(3, [("01", "second", 3, "AB")])
    take(inv, "01/01B 01/02A", 0, 2)  # rows 1 and 2 have one free seat each

    assert chosen(inv, 0, 1, 2, together=True) == ["01/03A", "01/03B"]


def test_together_falls_back_to_adjacent_rows_of_one_coach() -> None:
    inv = make_inventory(3, [("01", "second", 4, "AB")])
    take(inv, "01/01B 01/02A 01/02B 01/03A", 0, 2)  # free: 01A, 03B, 04A, 04B

    assert chosen(inv, 0, 1, 3) == ["01/01A", "01/03B", "01/04A"]
    assert chosen(inv, 0, 1, 3, together=True) == ["01/03B", "01/04A", "01/04B"]


def test_together_does_not_treat_rows_with_a_full_row_between_as_adjacent() -> None:
    inv = make_inventory(3, [("01", "second", 4, "AB")])
    take(inv, "01/01A 01/02A 01/02B 01/04A", 0, 2)  # free: 01B | row 2 full | 03A 03B, 04B

    assert chosen(inv, 0, 1, 3, together=True) == ["01/03A", "01/03B", "01/04B"]


def test_together_does_not_treat_rows_of_different_coaches_as_adjacent() -> None:
    inv = make_inventory(3, [("01", "second", 2, "AB"), ("02", "second", 2, "AB")])
    # coach 01 row 2 and coach 02 row 1 each have two free seats; only coach 02 has three
    take(inv, "01/01A 01/01B 02/02A", 0, 2)

    assert chosen(inv, 0, 1, 3, together=True) == ["02/01A", "02/01B", "02/02B"]


def test_together_falls_back_to_one_coach() -> None:
    inv = make_inventory(3, [("01", "second", 3, "AB"), ("02", "second", 5, "AB")])
    take(inv, "01/01B 01/02A 01/02B 01/03B", 0, 2)  # coach 01: 01A, 03A
    take(inv, "02/01B 02/02A 02/02B 02/03B 02/04A 02/04B 02/05B", 0, 2)  # 01A, 03A, 05A

    assert chosen(inv, 0, 1, 3) == ["01/01A", "01/03A", "02/01A"]
    assert chosen(inv, 0, 1, 3, together=True) == ["02/01A", "02/03A", "02/05A"]


def test_together_seats_a_group_anywhere_rather_than_refusing_it() -> None:
    inv = make_inventory(3, [("01", "second", 2, "AB"), ("02", "second", 2, "AB")])
    take(inv, "01/01B 01/02A 01/02B 02/01A 02/01B 02/02B", 0, 2)  # free: 01/01A, 02/02A

    assert chosen(inv, 0, 1, 2, together=True) == ["01/01A", "02/02A"]


def test_together_honours_letters_within_the_row() -> None:
    inv = make_inventory(3, [("01", "second", 1, "ABCDF")])

    assert chosen(inv, 0, 1, 2, letters=["A", "F"], together=True) == ["01/01A", "01/01F"]


def test_together_picks_the_best_fitting_row() -> None:
    inv = make_inventory(4, [("01", "second", 2, "AB")])
    take(inv, "01/02A 01/02B", 0, 1)  # row 2 is free from S1 and touches trip 1-2

    assert chosen(inv, 1, 2, 2, together=True) == ["01/02A", "01/02B"]


def _brute_matrix(inv: Inventory, klass: str) -> list[int]:
    n = inv.n
    out = [0] * (n * (n - 1) // 2)
    for seat in inv.seats:
        if seat.klass != klass:
            continue
        for i in range(n):
            for j in range(i + 1, n):
                if not inv.bits[seat.index] & trip_mask(i, j):
                    out[pair_index(i, j, n)] += 1
    return out


@pytest.mark.parametrize("seed", range(6))
def test_availability_rows_patched_seat_by_seat_equal_a_brute_force_count(seed: int) -> None:
    import random

    rng = random.Random(seed)
    stations = rng.choice([2, 3, 6, 12])
    inv = make_inventory(stations, [("01", "second", 3, "AB"), ("02", "first", 1, "A")])
    held: list[tuple[int, int, int]] = []  # (seat, i, j)
    served = []
    for step in range(400):
        if held and rng.random() < 0.4:
            seat, i, j = held.pop(rng.randrange(len(held)))
            inv.release([seat], i, j)
        else:
            i = rng.randrange(stations - 1)
            j = rng.randrange(i + 1, stations)
            klass = rng.choice(["second", "first"])
            seats = inv.choose(klass, i, j, rng.choice([1, 1, 2]))
            if seats:
                inv.occupy(seats, i, j)
                held.extend((s, i, j) for s in seats)
        if rng.random() < 0.5:  # rows asked for after 1..n moves: patched or recomputed
            for klass in ("second", "first"):
                served.append(inv.matrix(klass))
                assert served[-1] == _brute_matrix(inv, klass), f"step {step}, {klass}"
    assert served

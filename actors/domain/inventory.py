"""The seat map of one route: per-seat segment bitmasks indexed by (class, mask).

Seats with equal masks are interchangeable for every future request, so
allocation and exact availability walk the distinct masks of a class, not its
seats. Everything here is synchronous and pure Python: the route actor calls
it between awaits, never across one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from actors.domain.route import RouteDef, Seat, trip_mask


def _touches(mask: int, left: int, right: int) -> int:
    """Sides (0-2) on which a seat's busy segments or the end of the line meet the trip."""
    # bool(): `mask & left` is the bit's value (2, 4, 8…), not 1; summed raw it weighted
    # right-hand touches above left-hand ones and made `== 2` a false "perfect fit"
    return (not left or bool(mask & left)) + (not right or bool(mask & right))


#: seat moves patched into a cached availability row before a full recompute is cheaper
_PATCH_LIMIT = 24


class InventoryCorrupt(AssertionError):
    """An event tried to occupy a taken segment or free a free one: never expected."""


class Inventory:
    """Exact seat-segment occupancy for one route."""

    def __init__(self, route: RouteDef) -> None:
        self.route = route
        self.n = len(route.stations)
        self.seats: list[Seat] = route.seats()
        self.bits: list[int] = [0] * len(self.seats)
        self.classes = route.classes()
        # class -> mask -> insertion-ordered set of seat indexes (dict as ordered set)
        self.index: dict[str, dict[int, dict[int, None]]] = {k: {} for k in self.classes}
        for seat in self.seats:
            self.index[seat.klass].setdefault(0, {})[seat.index] = None
        self.version: dict[str, int] = dict.fromkeys(self.classes, 0)
        self._avail: dict[tuple[str, int], tuple[int, int]] = {}
        self._matrix: dict[str, tuple[int, list[int]]] = {}
        self._runs: dict[int, list[tuple[int, int]]] = {}
        #: per class, the seat moves (old mask, new mask) since its matrix row was made,
        #: or None when there were too many to patch
        self._moves: dict[str, list[tuple[int, int]] | None] = dict.fromkeys(self.classes)
        self._letter = [seat.letter for seat in self.seats]
        # class -> [(coach index, row, seat indexes)] for keeping groups together
        self._rows: dict[str, list[tuple[int, int, list[int]]]] = {k: [] for k in self.classes}
        for seat in self.seats:
            rows = self._rows[seat.klass]
            if not rows or rows[-1][:2] != (seat.coach_index, seat.row):
                rows.append((seat.coach_index, seat.row, []))
            rows[-1][2].append(seat.index)

    # ---- queries ---------------------------------------------------------------

    def available(self, klass: str, i: int, j: int) -> int:
        """Exact number of `klass` seats free on every segment from station i to j."""
        want = trip_mask(i, j)
        key = (klass, want)
        version = self.version[klass]
        hit = self._avail.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        count = self.count_free(klass, want)
        self._avail[key] = (version, count)
        return count

    def count_free(self, klass: str, want: int) -> int:
        """Seats of `klass` free on every segment of `want`, computed (not memoised)."""
        count = 0
        for mask, bucket in self.index[klass].items():
            if not mask & want:
                count += len(bucket)
        return count

    def known_short(self, klass: str, i: int, j: int, count: int) -> bool:
        """True if the memo already says fewer than `count` seats fit (no scan)."""
        hit = self._avail.get((klass, ((1 << (j - i)) - 1) << i))
        return hit is not None and hit[0] == self.version[klass] and hit[1] < count

    def matrix(self, klass: str) -> list[int]:
        """Availability of every station pair for `klass`, indexed by pair_index."""
        version = self.version[klass]
        hit = self._matrix.get(klass)
        if hit is not None and hit[0] == version:
            return hit[1]
        moves = self._moves[klass]
        if hit is not None and moves is not None:
            # a few seats changed since the row was made: patch a copy (the old row may
            # still be held, e.g. in an answer on its way)
            row = list(hit[1])
            if all(self._patch(row, old, new) for old, new in moves):
                self._moves[klass] = []
                self._matrix[klass] = (version, row)
                return row
        self._moves[klass] = []
        n = self.n
        # Each seat adds 1 to every trip (i, j) inside a run of its free segments, a
        # triangle of the (i, j) table. Per row i that is one interval of j, so a
        # difference array per row takes a run in O(its length), not O(length²), and a
        # prefix sum per row yields the counts: O(masks·n + n²) instead of O(masks·n²).
        diff = [[0] * (n + 1) for _ in range(n)]
        for mask, bucket in self.index[klass].items():
            count = len(bucket)
            for a, b in self._free_runs(mask):
                for i in range(a, b):
                    row = diff[i]
                    row[i + 1] += count
                    row[b + 1] -= count
        out: list[int] = []
        for i in range(n - 1):
            # pair_index walks rows i, then j = i+1 … n-1: the rows' sums, concatenated
            out.extend(itertools.accumulate(diff[i][i + 1 : n]))
        self._matrix[klass] = (version, out)
        return out

    def _patch(self, row: list[int], old: int, new: int) -> bool:
        """Apply one seat's change old -> new to a matrix row; False if it is not one
        interval taken or freed (then the caller recomputes)."""
        changed = old ^ new
        i = (changed & -changed).bit_length() - 1  # lowest changed segment
        j = changed.bit_length()  # one past the highest
        if changed != ((1 << (j - i)) - 1) << i:
            return False
        if not old & changed:
            free, step = old, -1  # taken: the trips across i..j that were free are lost
        elif not new & changed:
            free, step = new, 1  # freed: the trips across it inside the new free run
        else:
            return False
        n = self.n
        # the run of free segments around i..j-1, as stations ra..rb
        ra, rb = i, j
        while ra > 0 and not free >> (ra - 1) & 1:
            ra -= 1
        while rb < n - 1 and not free >> rb & 1:
            rb += 1
        # trips (a, b) with ra <= a < j and max(a, i) < b <= rb cross the changed interval;
        # for one a they are consecutive pair indexes
        for a in range(ra, j):
            base = a * (2 * n - a - 1) // 2 - a - 1  # pair_index(a, b) = base + b
            lo, hi = base + max(a, i) + 1, base + rb + 1
            row[lo:hi] = [x + step for x in row[lo:hi]]
        return True

    def _free_runs(self, mask: int) -> list[tuple[int, int]]:
        """Maximal runs of free segments of a seat with `mask`, as station ranges (a, b):
        segments a … b-1 are free, so every trip inside [a, b] is. Memoised per mask."""
        runs = self._runs.get(mask)
        if runs is None:
            runs = []
            n = self.n
            start = 0
            for seg in range(n):
                if seg == n - 1 or mask >> seg & 1:
                    if seg > start:
                        runs.append((start, seg))
                    start = seg + 1
            self._runs[mask] = runs
        return runs

    def choose(
        self,
        klass: str,
        i: int,
        j: int,
        count: int,
        letters: Sequence[str] = (),
        together: bool = False,
    ) -> list[int] | None:
        """Best-fit seats for `count` passengers from i to j, or None if they do not fit."""
        want = trip_mask(i, j)
        index = self.index[klass]
        left = 1 << (i - 1) if i > 0 else 0
        right = 1 << j if j < self.n - 1 else 0
        hit = self._avail.get((klass, want))
        if hit is not None and hit[0] == self.version[klass] and hit[1] < count:
            return None  # known sold out at this version: the common case late in a sale
        if count == 1 and not letters:
            found = self._choose_one(index, want, left, right)
            if found is None:
                self._avail[(klass, want)] = (self.version[klass], 0)
            return found
        ranked = self._ranked_masks(index, want, left, right)
        free = sum(len(index[m]) for m in ranked)
        self._avail[(klass, want)] = (self.version[klass], free)
        if free < count:
            return None
        if together and count > 1:
            return self._choose_together(index, ranked, count, letters, klass, want, left, right)
        return self._choose_loose(index, ranked, count, letters)

    @staticmethod
    def _score(mask: int, left: int, right: int) -> int:
        # touching a neighbour (or the end of the line) on each side is what keeps the
        # rest of the seat usable for long trips; more occupied segments break ties
        return _touches(mask, left, right) * 64 + mask.bit_count()

    def _choose_one(
        self, index: dict[int, dict[int, None]], want: int, left: int, right: int
    ) -> list[int] | None:
        best_mask = -1
        best_score = -1
        for mask in index:
            if mask & want:
                continue
            touch = _touches(mask, left, right)
            if touch == 2:
                return [next(iter(index[mask]))]
            score = touch * 64 + mask.bit_count()
            if score > best_score:
                best_score, best_mask = score, mask
        if best_mask < 0:
            return None
        return [next(iter(index[best_mask]))]

    def _ranked_masks(
        self, index: dict[int, dict[int, None]], want: int, left: int, right: int
    ) -> list[int]:
        ranked = [m for m in index if not m & want]
        ranked.sort(key=lambda m: (-self._score(m, left, right), m))
        return ranked

    def _choose_loose(
        self,
        index: dict[int, dict[int, None]],
        ranked: list[int],
        count: int,
        letters: Sequence[str],
    ) -> list[int]:
        chosen: list[int] = []
        if letters:
            wanted = set(letters)
            for mask in ranked:
                for s in index[mask]:
                    if self.seats[s].letter in wanted:
                        chosen.append(s)
                        if len(chosen) == count:
                            return sorted(chosen)
        taken = set(chosen)
        for mask in ranked:
            for s in index[mask]:
                if s not in taken:
                    chosen.append(s)
                    if len(chosen) == count:
                        return sorted(chosen)
        raise InventoryCorrupt("free seat count and index disagree")

    def _choose_together(
        self,
        index: dict[int, dict[int, None]],
        ranked: list[int],
        count: int,
        letters: Sequence[str],
        klass: str,
        want: int,
        left: int,
        right: int,
    ) -> list[int]:
        """Same row of one coach, else two adjacent rows, else one coach, else anywhere."""
        wanted = set(letters)
        bits = self.bits
        seat_letter = self._letter
        # lower cost is better: best fit first (scored once per distinct mask), a
        # preferred letter breaks ties
        mask_cost: dict[int, int] = {}
        costs: dict[int, int] = {}
        # one pass over the class's rows (a few hundred seats): free seats per row
        free_rows: list[tuple[int, int, list[int]]] = []
        for coach, row, members in self._rows[klass]:
            free = []
            for s in members:
                mask = bits[s]
                if mask & want:
                    continue
                c = mask_cost.get(mask)
                if c is None:
                    c = mask_cost[mask] = -2 * self._score(mask, left, right)
                costs[s] = c + (0 if not wanted or seat_letter[s] in wanted else 1)
                free.append(s)
            if free:
                free_rows.append((coach, row, free))
        cost_of = costs.__getitem__

        def pick(groups: list[list[int]]) -> list[int] | None:
            best: tuple[int, list[int]] | None = None
            for group in groups:
                if len(group) < count:
                    continue
                # stable sort: equal costs keep seat order (front of the coach first)
                chosen = sorted(group, key=cost_of)[:count] if len(group) > count else group
                total = sum(map(cost_of, chosen))
                if best is None or total < best[0]:
                    best = (total, chosen)
            return None if best is None else sorted(best[1])

        found = pick([f for _, _, f in free_rows])
        if found is None:
            found = pick(
                [
                    a[2] + b[2]
                    for a, b in itertools.pairwise(free_rows)
                    if a[0] == b[0] and b[1] == a[1] + 1
                ]
            )
        if found is None:
            by_coach: dict[int, list[int]] = {}
            for coach, _, free in free_rows:
                by_coach.setdefault(coach, []).extend(free)
            found = pick(list(by_coach.values()))
        if found is None:
            found = self._choose_loose(index, ranked, count, letters)
        return found

    # ---- changes ---------------------------------------------------------------

    def occupy(self, seats: Sequence[int], i: int, j: int) -> None:
        """Mark segments i..j-1 taken on each seat."""
        want = trip_mask(i, j)
        for s in seats:
            mask = self.bits[s]
            if mask & want:
                raise InventoryCorrupt(f"seat {s} segment already sold ({mask:b} & {want:b})")
            self._move(s, mask, mask | want)

    def release(self, seats: Sequence[int], i: int, j: int) -> None:
        """Return segments i..j-1 of each seat to sale."""
        want = trip_mask(i, j)
        for s in seats:
            mask = self.bits[s]
            if mask & want != want:
                raise InventoryCorrupt(f"seat {s} segment not held ({mask:b} vs {want:b})")
            self._move(s, mask, mask & ~want)

    def _move(self, s: int, old: int, new: int) -> None:
        klass = self.seats[s].klass
        index = self.index[klass]
        bucket = index[old]
        del bucket[s]
        if not bucket:
            del index[old]
        index.setdefault(new, {})[s] = None
        self.bits[s] = new
        self.version[klass] += 1
        moves = self._moves[klass]
        if moves is not None:
            # remembered for patching the class's matrix row; past a few, recomputing it
            # is cheaper, and None stops the bookkeeping until the row is made again
            if len(moves) < _PATCH_LIMIT:
                moves.append((old, new))
            else:
                self._moves[klass] = None

    def load_bits(self, bits: Sequence[int]) -> None:
        """Restore occupancy from a snapshot's per-seat masks."""
        if len(bits) != len(self.seats):
            raise InventoryCorrupt("snapshot seat count does not match the route")
        for s, mask in enumerate(bits):
            if mask != self.bits[s]:
                self._move(s, self.bits[s], mask)

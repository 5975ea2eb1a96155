"""Order statistics the waiting room's audit needs: Spearman's rho and counting inverted pairs
in O(n log n) (thousands of joiners make millions of pairs)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of `values`, ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            out[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return out


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation of paired samples (the Pearson correlation of their ranks,
    exact with ties); None when it is undefined (under 3 pairs, or one side constant)."""
    if len(xs) != len(ys):
        raise ValueError("spearman needs paired samples")
    n = len(xs)
    if n < 3:
        return None
    rx, ry = ranks(xs), ranks(ys)
    mean = (n + 1) / 2
    sxy = sum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mean) ** 2 for a in rx)
    syy = sum((b - mean) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def count_pairs(
    queries: Sequence[tuple[float, float]], items: Sequence[tuple[float, float]]
) -> int:
    """How many (query, item) pairs have item[0] > query[0] and item[1] < query[1].

    Both inversion counts of the audit are this question: "someone placed after me was served
    before me". Queries and items are swept by their first key, largest first, the items seen
    so far kept in a Fenwick tree over their second key.
    """
    seconds = sorted(k2 for _, k2 in items)
    tree = [0] * (len(seconds) + 1)

    def add(k2: float) -> None:
        i = bisect_left(seconds, k2) + 1
        while i < len(tree):
            tree[i] += 1
            i += i & -i

    def below(k2: float) -> int:
        i, total = bisect_left(seconds, k2), 0
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    pending = sorted(items, key=lambda item: item[0], reverse=True)
    seen = total = 0
    for k1, k2 in sorted(queries, key=lambda q: q[0], reverse=True):
        while seen < len(pending) and pending[seen][0] > k1:
            add(pending[seen][1])
            seen += 1
        total += below(k2)
    return total


def count_before(times: Sequence[float], thresholds: Sequence[float]) -> int:
    """How many (time, threshold) pairs have time < threshold."""
    ordered = sorted(times)
    return sum(bisect_left(ordered, t) for t in thresholds)

"""The queue's order: everyone who joined before the opening in a uniformly random order,
then everyone after in arrival order. Admission follows it.

Shuffling the pre-queue is what makes arriving early pointless for a bot: before the
opening there is no "first". After it, first come first served is fair, and nothing
else is: a random draw among later arrivals would reward whoever joins most often.
`Queue` is the order as a plain object, the reference for where it is kept.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence


def opening_order(prequeue: Sequence[str], rng: random.Random | None = None) -> list[str]:
    """The pre-queue in a uniformly random order (Fisher-Yates; the OS's CSPRNG unless
    `rng` is given: nobody may predict or replay the draw)."""
    order = list(prequeue)
    (rng or secrets.SystemRandom()).shuffle(order)
    return order


class Queue:
    """One sale's queue: who holds which place (1-based), one place per user."""

    def __init__(self) -> None:
        self._place: dict[str, int] = {}
        self._prequeue: list[str] = []
        self._waiting: set[str] = set()  # joined before the opening
        self.opened = False

    def __len__(self) -> int:
        return len(self._place) + len(self._prequeue)

    def join(self, user: str) -> int | None:
        """Join (again: the same answer). The place, or None in the pre-queue, where
        places are drawn at the opening."""
        if user in self._place:
            return self._place[user]
        if not self.opened:
            if user not in self._waiting:
                self._waiting.add(user)
                self._prequeue.append(user)
            return None
        place = self._place[user] = len(self._place) + 1
        return place

    def open(self, rng: random.Random | None = None) -> None:
        """Draw the pre-queue's places (once: a second opening changes nothing)."""
        if self.opened:
            return
        self.opened = True
        for n, user in enumerate(opening_order(self._prequeue, rng), start=1):
            self._place[user] = n
        self._prequeue.clear()

    def place(self, user: str) -> int | None:
        """The user's place, or None (not queued, or in the pre-queue)."""
        return self._place.get(user)

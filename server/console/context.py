"""What the console's endpoints share: the seat-map cache, the sampler, the actor watch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.console.actor_watch import ActorWatch
    from server.console.sampler import Sampler
    from server.console.seats import SeatMaps


@dataclass(frozen=True, slots=True)
class Console:
    seat_maps: SeatMaps
    sampler: Sampler
    actors: ActorWatch

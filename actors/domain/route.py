"""Route definitions: stations, coaches and the seats they imply (pure)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.domain.errors import BadTrip, InvalidRoute, UnknownClass, UnknownStation

MAX_STATIONS = 64
MAX_COACHES = 40
MAX_ROWS = 99
MAX_SEATS = 5000

_TRAIN = re.compile(r"^[A-Z0-9]{1,12}$")
_COACH = re.compile(r"^[0-9]{1,3}$")
_CLASS = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_LETTERS = re.compile(r"^[A-Z]{1,10}$")
_ROUTE_ID = re.compile(r"^[A-Z0-9]{1,12}-[0-9]{8}$")


def is_route_id(value: str) -> bool:
    """Whether `value` has the `<train>-<YYYYMMDD>` shape."""
    return bool(_ROUTE_ID.match(value))


@dataclass(frozen=True, slots=True)
class Coach:
    number: str
    klass: str
    rows: int
    letters: str


@dataclass(frozen=True, slots=True)
class Seat:
    """One physical seat; `index` is its position in the route's seat table."""

    index: int
    coach: str
    coach_index: int
    row: int
    letter: str
    klass: str

    @property
    def name(self) -> str:
        return f"{self.row:02d}{self.letter}"


_TIME = re.compile(r"^([0-4][0-9]):([0-5][0-9])$")
MAX_HOURS = 48  # GTFS-style: 25:10 is 01:10 the next day, for trains running past midnight


@dataclass(frozen=True, slots=True)
class Stop:
    """When the train is at one station: `HH:MM` on the route's date (HH up to 47)."""

    arrive: str | None
    depart: str | None


def minutes(hhmm: str) -> int:
    """Minutes after midnight of the route's date for `HH:MM` (already validated)."""
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


@dataclass(frozen=True, slots=True)
class RouteDef:
    """A validated train-route-date: stations in travel order and its coaches.

    `schedule` (optional, one Stop per station) is the timetable; a route without one is
    answered exactly as before it existed."""

    train: str
    date: str
    stations: tuple[str, ...]
    coaches: tuple[Coach, ...]
    schedule: tuple[Stop, ...] = ()
    route_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # computed once: it is read on every decision
        object.__setattr__(self, "route_id", f"{self.train}-{self.date.replace('-', '')}")

    @property
    def segments(self) -> int:
        return len(self.stations) - 1

    def classes(self) -> list[str]:
        """Seat classes in the order their first coach appears."""
        return list(dict.fromkeys(c.klass for c in self.coaches))

    def seats(self) -> list[Seat]:
        """Every seat, ordered by coach, row, letter."""
        out: list[Seat] = []
        for ci, coach in enumerate(self.coaches):
            for row in range(1, coach.rows + 1):
                for letter in coach.letters:
                    out.append(Seat(len(out), coach.number, ci, row, letter, coach.klass))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON shape, with `route_id` (and `schedule` only if it has one)."""
        out: dict[str, Any] = {
            "route_id": self.route_id,
            "train": self.train,
            "date": self.date,
            "stations": list(self.stations),
            "coaches": [
                {"number": c.number, "class": c.klass, "rows": c.rows, "letters": c.letters}
                for c in self.coaches
            ],
        }
        if self.schedule:
            out["schedule"] = [{"arrive": s.arrive, "depart": s.depart} for s in self.schedule]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouteDef:
        """Build and validate from the contract's JSON shape (route_id optional, checked)."""
        try:
            coaches = tuple(
                Coach(str(c["number"]), str(c["class"]), _whole(c["rows"]), str(c["letters"]))
                for c in data["coaches"]
            )
            stations = data["stations"]
            # a bare string is iterable too: it would silently become one station per letter
            if not isinstance(stations, list | tuple):
                raise TypeError(f"stations must be a list of names, not {type(stations).__name__}")
            raw_schedule = data.get("schedule") or []
            if not isinstance(raw_schedule, list | tuple):
                raise TypeError("schedule must be a list with one entry per station")
            schedule = tuple(
                Stop(_time_or_none(s.get("arrive")), _time_or_none(s.get("depart")))
                for s in raw_schedule
            )
            route = cls(str(data["train"]), str(data["date"]), tuple(stations), coaches, schedule)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidRoute(f"Route definition is malformed: {exc}.") from exc
        route.validate()
        given = data.get("route_id")
        if given is not None and given != route.route_id:
            raise InvalidRoute(f"route_id {given!r} does not match train and date.")
        return route

    def validate(self) -> None:
        """Raise InvalidRoute with a sentence naming the first problem."""
        if not _TRAIN.match(self.train):
            raise InvalidRoute(
                f"Train {self.train!r} must be 1-12 capital letters or digits, e.g. 'G101'."
            )
        try:
            parsed = dt.date.fromisoformat(self.date)
        except ValueError:
            parsed = None
        if parsed is None or parsed.isoformat() != self.date:
            raise InvalidRoute(f"Date {self.date!r} must be a calendar date as YYYY-MM-DD.")
        if not 2 <= len(self.stations) <= MAX_STATIONS:
            raise InvalidRoute(f"A route needs 2 to {MAX_STATIONS} stations.")
        for name in self.stations:
            if not isinstance(name, str) or not name.strip() or len(name) > 64:
                raise InvalidRoute("Station names must be non-empty strings of at most 64 chars.")
        if len(set(self.stations)) != len(self.stations):
            raise InvalidRoute("Station names must be unique along a route.")
        if not 1 <= len(self.coaches) <= MAX_COACHES:
            raise InvalidRoute(f"A route needs 1 to {MAX_COACHES} coaches.")
        numbers = [c.number for c in self.coaches]
        if len(set(numbers)) != len(numbers):
            raise InvalidRoute("Coach numbers must be unique.")
        for c in self.coaches:
            if not _COACH.match(c.number):
                raise InvalidRoute(f"Coach number {c.number!r} must be 1-3 digits, e.g. '03'.")
            if not _CLASS.match(c.klass):
                raise InvalidRoute(
                    f"Class {c.klass!r} must be lower-case letters/digits, e.g. 'second'."
                )
            if not 1 <= c.rows <= MAX_ROWS:
                raise InvalidRoute(f"Coach {c.number} must have 1 to {MAX_ROWS} rows.")
            if not _LETTERS.match(c.letters) or len(set(c.letters)) != len(c.letters):
                raise InvalidRoute(
                    f"Coach {c.number} seat letters must be distinct capitals, e.g. 'ABCDF'."
                )
        total = sum(c.rows * len(c.letters) for c in self.coaches)
        if total > MAX_SEATS:
            raise InvalidRoute(f"A route may have at most {MAX_SEATS} seats; this has {total}.")
        if self.schedule:
            self._validate_schedule()

    def _validate_schedule(self) -> None:
        if len(self.schedule) != len(self.stations):
            raise InvalidRoute(
                f"The schedule needs one entry per station ({len(self.stations)}); "
                f"it has {len(self.schedule)}."
            )
        times: list[int] = []
        last = len(self.schedule) - 1
        for n, (name, stop) in enumerate(zip(self.stations, self.schedule, strict=True)):
            for value in (stop.arrive, stop.depart):
                if value is not None and not _valid_time(value):
                    raise InvalidRoute(
                        f"Schedule time {value!r} at {name!r} must be HH:MM, hours 00-47 "
                        "(past 23 for the next day)."
                    )
            if n > 0 and stop.arrive is None:
                raise InvalidRoute(f"The schedule needs an arrival time at {name!r}.")
            if n < last and stop.depart is None:
                raise InvalidRoute(f"The schedule needs a departure time at {name!r}.")
            times += [minutes(t) for t in (stop.arrive, stop.depart) if t is not None]
        if times != sorted(times):
            raise InvalidRoute(
                "Schedule times must not go backwards along the route; write a time after "
                "midnight as 24:00-47:59."
            )

    def departure(self, i: int) -> str | None:
        """Scheduled departure from station i, if the route has a schedule."""
        return self.schedule[i].depart if self.schedule else None

    def arrival(self, j: int) -> str | None:
        """Scheduled arrival at station j, if the route has a schedule."""
        return self.schedule[j].arrive if self.schedule else None


def _valid_time(value: str) -> bool:
    m = _TIME.match(value)
    return m is not None and int(m.group(1)) < MAX_HOURS


def _time_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"schedule times must be 'HH:MM' strings, not {value!r}")
    return value


def _whole(value: Any) -> int:
    # int() would truncate 2.9 to 2 and accept True as 1: a typo must not shrink a coach
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"rows must be a whole number, not {value!r}")
    return value


def trip_mask(i: int, j: int) -> int:
    """Bitmask of segments i..j-1 (a ticket from station i to station j)."""
    return ((1 << (j - i)) - 1) << i


def pair_index(i: int, j: int, n: int) -> int:
    """Position of station pair (i, j), i < j, in the flattened upper triangle."""
    return i * (2 * n - i - 1) // 2 + (j - i - 1)


def resolve_trip(
    route_id: str,
    station_index: Mapping[str, int],
    classes: Sequence[str],
    from_: str,
    to: str,
    klass: str | None = None,
) -> tuple[int, int]:
    """Station indexes (i, j) of a trip, checked against the route; raises domain errors."""
    i = station_index.get(from_)
    if i is None:
        raise UnknownStation(route_id, from_)
    j = station_index.get(to)
    if j is None:
        raise UnknownStation(route_id, to)
    if j <= i:
        raise BadTrip(route_id, from_, to)
    if klass is not None and klass not in classes:
        raise UnknownClass(route_id, klass, list(classes))
    return i, j

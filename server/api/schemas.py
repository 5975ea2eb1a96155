"""Request and response bodies of the HTTP contract, as strict msgspec types.

The same types validate requests and generate /openapi.json, so the two
cannot drift. Unknown fields are rejected everywhere (no mass assignment).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

Name = Annotated[str, Meta(min_length=1, max_length=64)]
PassengerId = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z-]+$")]
Letter = Annotated[str, Meta(pattern=r"^[A-Z]$")]
Station = Annotated[str, Meta(min_length=1, max_length=64)]
SeatClass = Annotated[str, Meta(min_length=1, max_length=32)]


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    pass


class CoachIn(Strict):
    number: Annotated[str, Meta(pattern=r"^[0-9]{1,3}$", description="Coach number, e.g. '03'")]
    klass: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = msgspec.field(name="class")
    rows: Annotated[int, Meta(ge=1, le=99)]
    letters: Annotated[str, Meta(pattern=r"^[A-Z]{1,10}$", description="Seat letters per row")]


Time = Annotated[
    str,
    Meta(
        pattern=r"^([0-3][0-9]|4[0-7]):[0-5][0-9]$",
        description="HH:MM on the route's date; 24:00-47:59 is the next day",
        examples=["08:05"],
    ),
]


class StopIn(Strict):
    arrive: Time | None = None
    depart: Time | None = None


class RouteIn(Strict):
    train: Annotated[str, Meta(pattern=r"^[A-Z0-9]{1,12}$", examples=["G101"])]
    date: Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples=["2026-12-01"])]
    stations: Annotated[
        list[Station], Meta(min_length=2, max_length=64, extra_json_schema={"uniqueItems": True})
    ]
    coaches: Annotated[list[CoachIn], Meta(min_length=1, max_length=40)]
    schedule: Annotated[
        list[StopIn] | None,
        Meta(description="Optional timetable: one entry per station, in station order"),
    ] = None


class RouteOut(RouteIn):
    route_id: Annotated[str, Meta(examples=["G101-20261201"])] = ""


Cursor = Annotated[
    str | None, Meta(description="Pass as ?cursor= for the next page; null on the last page")
]


class RouteList(msgspec.Struct):
    routes: list[RouteOut]
    next_cursor: Cursor = None


class PassengerIn(Strict):
    name: Name
    id: PassengerId


class SeatRef(Strict):
    coach: Annotated[str, Meta(pattern=r"^[0-9]{1,3}$", examples=["03"])]
    seat: Annotated[str, Meta(pattern=r"^[0-9]{2}[A-Z]$", examples=["07C"])]


class BookingIn(Strict):
    from_: Station = msgspec.field(name="from")
    to: Station
    klass: SeatClass = msgspec.field(name="class")
    passengers: Annotated[list[PassengerIn], Meta(min_length=1, max_length=5)]
    seat_letters: Annotated[list[Letter], Meta(max_length=10)] = []
    together: bool = False
    waitlist: bool = False
    seats: Annotated[
        list[SeatRef],
        Meta(max_length=5, description="Seats picked on the seat map, one per passenger, "
             "all of 'class'; left out, the server chooses (best fit)"),
    ] = []  # fmt: skip


class ChangeIn(Strict):
    from_: Station = msgspec.field(name="from")
    to: Station
    klass: SeatClass = msgspec.field(name="class")


class SeatOut(msgspec.Struct):
    coach: str
    seat: Annotated[str, Meta(examples=["07C"])]
    passenger: Annotated[int, Meta(description="Index into the request's passengers")]


class BookingOut(msgspec.Struct):
    booking_id: str
    route_id: str
    status: Annotated[str, Meta(description="held | confirmed | expired | cancelled | waitlisted")]
    from_: str = msgspec.field(name="from")
    to: str = ""
    klass: str = msgspec.field(name="class", default="")
    seats: list[SeatOut] = []
    hold_expires_at: Annotated[str | None, Meta(description="UTC ISO-8601 while held")] = None
    created_at: str | None = None


class AdminBookingOut(BookingOut):
    user: str = ""
    passengers: list[PassengerIn] = []


class BookingList(msgspec.Struct):
    bookings: list[AdminBookingOut]


class AvailabilityOut(msgspec.Struct):
    route_id: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    availability: Annotated[dict[str, int], Meta(description="Free seats per class")] = {}


class OwnBookingList(msgspec.Struct):
    bookings: Annotated[list[BookingOut], Meta(description="Newest first")]
    next_cursor: Cursor = None


class TrainOut(msgspec.Struct):
    route_id: str
    train: str
    availability: Annotated[dict[str, int], Meta(description="Free seats per class for the trip")]
    departure: Annotated[str | None, Meta(description="From 'from', if scheduled")] = None
    arrival: Annotated[str | None, Meta(description="At 'to', if scheduled")] = None


class SearchOut(msgspec.Struct):
    date: str
    from_: str = msgspec.field(name="from")
    to: str = ""
    trains: Annotated[
        list[TrainOut],
        Meta(description="Scheduled trains by departure, then the others by train"),
    ] = []


class ProblemOut(msgspec.Struct):
    type: Annotated[str, Meta(description="Stable slug, e.g. sold-out, validation")]
    title: str
    status: int
    detail: Annotated[str, Meta(description="What happened and what to do about it")]


class Health(msgspec.Struct, omit_defaults=True):
    status: str
    checks: dict[str, str] = {}
    #: /healthz: the front-end process that answered (its pid, and its index among the
    #: node's workers, null when the server process serves HTTP itself)
    pid: int | None = None
    worker: int | None = None


route_in = msgspec.json.Decoder(RouteIn)
booking_in = msgspec.json.Decoder(BookingIn)
change_in = msgspec.json.Decoder(ChangeIn)


class SaleOut(msgspec.Struct):
    sale_id: str
    routes: list[str]
    opens_at: Annotated[str, Meta(description="RFC 3339")]
    state: Annotated[str, Meta(description="scheduled | open | paused | sold-out | closed")]
    admit_per_second: Annotated[float | None, Meta(description="null: automatic")]
    #: places given so far, and how far admission has reached
    queued: int = 0
    admitted: int = 0
    joined: Annotated[
        int, Meta(description="People who joined its queue, those waiting for the opening too")
    ] = 0
    seats_left: Annotated[
        int | None,
        Meta(description="Seats still bookable for some trip on its routes, as this front end "
             "last counted them (a few times a second); null until counted, and for a sale "
             "closed before it was"),
    ] = None  # fmt: skip
    admit_rate: Annotated[
        float, Meta(description="People admitted per second, measured over the last 10 s")
    ] = 0.0


class SaleList(msgspec.Struct):
    sales: Annotated[list[SaleOut], Meta(description="Latest opening first")]


class QueueOut(msgspec.Struct):
    state: Annotated[str, Meta(description="not-open | waiting | admitted | sold-out | closed")]
    place: int | None
    ahead: int | None
    eta_seconds: float | None
    poll_after_seconds: float
    admission: Annotated[
        str | None,
        Meta(description="While admitted: send it as the Admission header to book; once "
             "sold out, the waitlist's (see `waitlist`)"),
    ]  # fmt: skip
    ticket: Annotated[
        str | None,
        Meta(description="Your place, signed: send it as the Queue-Ticket header when polling"),
    ] = None
    waitlist: Annotated[
        bool,
        Meta(
            description="The sale sold out and you are offered its waitlist: book with "
            '"waitlist": true and the admission; freed seats go to it in order'
        ),
    ] = False

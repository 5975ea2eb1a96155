"""Domain errors: each carries its data, a sentence a client can act on, and `type`, the
stable name of the refusal (clients see it as the problem type).

Its HTTP status and title are the HTTP layer's, in one place (server/api/problems.py);
the domain never knows about HTTP.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A command the domain refuses; `type` names the refusal."""

    type: ClassVar[str] = "domain-error"

    def __init__(self, detail: str, **data: Any) -> None:
        super().__init__(detail)
        self._detail = detail
        self._data = data

    @property
    def detail(self) -> str:
        return self._detail

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    def __str__(self) -> str:
        return self.detail

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, safe to send across Ray and to journal."""
        return {"type": self.type, "detail": self.detail, **self.data}


class InvalidRoute(DomainError):
    type = "validation"


class InvalidRequest(DomainError):
    type = "validation"


class UnknownStation(DomainError):
    type = "unknown-station"

    def __init__(self, route_id: str, station: str) -> None:
        super().__init__(
            f"Route {route_id} does not stop at {station!r}; use a station name from the "
            "route's definition.",
            route_id=route_id,
            station=station,
        )


class UnknownClass(DomainError):
    type = "unknown-class"

    def __init__(self, route_id: str, klass: str, known: list[str]) -> None:
        super().__init__(
            f"Route {route_id} has no class {klass!r}; choose one of {', '.join(known)}.",
            route_id=route_id,
            known=known,
            **{"class": klass},
        )


class BadTrip(DomainError):
    type = "bad-trip"

    def __init__(self, route_id: str, from_: str, to: str) -> None:
        super().__init__(
            f"On route {route_id} the trip from {from_!r} to {to!r} is empty or runs "
            "backwards; 'to' must be a later station than 'from'.",
            route_id=route_id,
            **{"from": from_, "to": to},
        )


class SoldOut(DomainError):
    type = "sold-out"

    # raised for most requests late in a flash sale: keep construction cheap and format
    # the sentence only when someone reads it
    def __init__(self, route_id: str, klass: str, from_: str, to: str, wanted: int) -> None:
        self.route_id, self.klass, self.from_, self.to, self.wanted = (
            route_id, klass, from_, to, wanted
        )  # fmt: skip

    @property
    def detail(self) -> str:
        return (
            f"Fewer than {self.wanted} {self.klass} seat(s) are free on {self.route_id} from "
            f"{self.from_} to {self.to}; try another class or trip, or ask to be waitlisted "
            'with "waitlist": true.'
        )

    @property
    def data(self) -> dict[str, Any]:
        return {
            "route_id": self.route_id,
            "class": self.klass,
            "from": self.from_,
            "to": self.to,
            "wanted": self.wanted,
        }


class SeatTaken(DomainError):
    type = "seat-taken"

    def __init__(self, route_id: str, seat: str, from_: str, to: str) -> None:
        super().__init__(
            f"Seat {seat} on {route_id} is no longer free from {from_} to {to}; pick another "
            "seat, or leave 'seats' out and let the server choose.",
            route_id=route_id,
            seat=seat,
            **{"from": from_, "to": to},
        )


class PassengerConflict(DomainError):
    type = "passenger-conflict"

    def __init__(self, route_id: str, passenger_id: str, booking_id: str) -> None:
        super().__init__(
            f"Passenger {passenger_id} already holds booking {booking_id} on route {route_id} "
            "for an overlapping trip; cancel it first or change it instead.",
            route_id=route_id,
            passenger_id=passenger_id,
            booking_id=booking_id,
        )


class TooManyBookings(DomainError):
    type = "too-many-bookings"

    def __init__(self, route_id: str, user: str, live: int, cap: int) -> None:
        super().__init__(
            f"User {user} already has {live} live passenger seat(s) on route {route_id}; "
            f"the limit is {cap}. Cancel or let a booking finish before booking more.",
            route_id=route_id,
            live=live,
            cap=cap,
        )


class BookingNotFound(DomainError):
    type = "not-found"

    def __init__(self, booking_id: str) -> None:
        super().__init__(f"There is no booking {booking_id} for you.", booking_id=booking_id)


class InvalidTransition(DomainError):
    type = "invalid-state"

    def __init__(self, booking_id: str, status: str, action: str) -> None:
        super().__init__(
            f"Booking {booking_id} is {status} and cannot be {action}.",
            booking_id=booking_id,
            status=status,
        )


class HoldExpired(DomainError):
    type = "hold-expired"

    def __init__(self, booking_id: str) -> None:
        super().__init__(
            f"The hold on booking {booking_id} expired before payment; its seats went back "
            "on sale. Book again.",
            booking_id=booking_id,
        )


class IdempotencyMismatch(DomainError):
    type = "idempotency-mismatch"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request; "
            "send a new key for a new booking.",
            key=key,
        )


class Unavailable(DomainError):
    """Storage did not confirm the write: nothing was applied; retry with the same key."""

    type = "unavailable"

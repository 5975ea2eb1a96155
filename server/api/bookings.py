"""Bookings: book on a route (the hot path), read, pay, cancel, change one, and list your own."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response

from actors.domain.errors import SoldOut
from actors.domain.messages import Book, Cancel, Change, Confirm, GetBooking, Passenger
from actors.storage.formats import is_member
from server import metrics
from server.api import query, render, schemas
from server.api.common import (
    Guard,
    check_body_headers,
    decode_json,
    endpoint,
    idempotency_key,
    json_response,
    new_booking_id,
    raw_headers,
    read_json,
    receive_body,
    route_of_booking,
)
from server.api.problems import Problem, from_domain
from server.api.services import Services, answer, services, trip
from server.dispatch.channel import Channel
from server.dispatch.errors import NoSuchRoute
from server.waiting.room import NotAdmitted

log = structlog.get_logger("ticketd.bookings")
#: sold-out answers kept per route (trips x classes x party sizes asked)
_SOLD_OUT_ANSWERS = 1024


def picked_seats(ch: Channel, body: schemas.BookingIn) -> list[int]:
    """The seat indexes of a booking's picked seats; 422 if one is not of this route."""
    index = ch.seat_index()
    if len(body.seats) != len(body.passengers):
        raise Problem(
            "validation",
            f"Pick one seat per passenger: {len(body.passengers)} passenger(s), "
            f"{len(body.seats)} seat(s).",
        )
    picked: list[int] = []
    for ref in body.seats:
        found = index.get((ref.coach, ref.seat))
        if found is None:
            raise Problem(
                "validation", f"Route {ch.route.route_id} has no seat {ref.coach}-{ref.seat}."
            )
        seat_index, klass = found
        if klass != body.klass:
            raise Problem(
                "validation",
                f"Seat {ref.coach}-{ref.seat} is {klass}, not {body.klass}; pick seats of "
                "the class you book.",
            )
        picked.append(seat_index)
    return picked


def _sold_out(ch: Channel, klass: str, from_: str, to: str, n: int) -> Response:
    """The 409 for a trip, made once per route and trip: a sold-out rush repeats it
    thousands of times a second, and a response is never changed once made."""
    answers = ch.sold_out_answers
    found = answers.get((klass, from_, to, n))
    if found is None:
        if len(answers) >= _SOLD_OUT_ANSWERS:
            answers.clear()
        found = from_domain(SoldOut(ch.route.route_id, klass, from_, to, n).to_dict())
        answers[(klass, from_, to, n)] = found
        # once per trip and party size: a rush of 409s is otherwise silent in the log,
        # and an operator (or a test whose load sold its trips out) must see why
        log.info(
            "trip sold out, refusing from memory",
            route_id=ch.route.route_id,
            klass=klass,
            from_station=from_,
            to_station=to,
            passengers=n,
        )
    return found


#: the booking endpoint's error mapping and metrics, shared by both ways in
BOOK = Guard("book")


async def book(request: Request) -> Response:
    """POST /v1/routes/{route_id}/bookings through Starlette (the route table's entry;
    requests normally take the raw ASGI way in, server/api/hot.py)."""

    async def body() -> bytes:
        return await receive_body(request.receive)

    answer = place(services(request), request.path_params["route_id"], raw_headers(request), body)
    return await BOOK.run(request.method, answer)


async def place(
    svc: Services, route_id: str, headers: dict[bytes, str], read: Callable[[], Awaitable[bytes]]
) -> Response:
    """Book on a route: the hot path. `read` gives the body once the headers passed."""
    user = svc.auth.user(headers.get(b"authorization"))
    key = idempotency_key(headers.get(b"idempotency-key"))
    ch = await svc.gateway.channel(route_id)
    sale_id = svc.room.gate(ch.route.route_id)
    waitlist_only = False
    if sale_id is not None:  # in a running sale: only with an admission (no I/O)
        try:
            got = svc.room.check(sale_id, user.id, headers.get(b"admission"), time.time())
            waitlist_only = got.waitlist_only
        except NotAdmitted as exc:
            raise Problem(
                "not-admitted",
                f"Route {ch.route.route_id} is in sale {sale_id}, and this booking has no "
                f"valid admission to it ({exc}): queue with POST /v1/sales/{sale_id}/queue, "
                "then book with the Admission header its answer gives once admitted.",
                sale_id=sale_id,
            ) from None
    svc.gateway.admit(ch)  # before reading and hashing the body
    check_body_headers(headers)
    body = decode_json(await read(), schemas.booking_in)
    if waitlist_only and not body.waitlist:
        raise Problem(
            "not-admitted",
            f"Sale {sale_id} sold out: your admission lets you join the waitlist only; "
            'send the booking again with "waitlist": true.',
            sale_id=sale_id,
        )
    i, j = trip(ch, body.from_, body.to, body.klass)
    picked = picked_seats(ch, body) if body.seats else []
    route_id = ch.route.route_id
    n = len(body.passengers)
    refusals = svc.gateway.refusals
    # no actor call for a trip the snapshot shows sold out (server/dispatch/refusals.py)
    if (
        not body.waitlist
        and refusals.short(ch, user.id, key, body.klass, i, j, n)
        and await refusals.sold_out(ch, user.id, key)
    ):
        metrics.SOLD_OUT_CACHED.inc()
        return _sold_out(ch, body.klass, body.from_, body.to, n)
    # the fingerprint tells a retry (same body) from a reuse of the key (different body)
    fingerprint = hashlib.sha256(route_id.encode() + msgspec.json.encode(body)).hexdigest()[:32]
    refusals.forwarded(user.id, key)
    cmd = Book(
        new_booking_id(route_id), user.id, key, fingerprint, body.from_, body.to, body.klass,
        [Passenger(p.name, p.id) for p in body.passengers], body.seat_letters, body.together,
        body.waitlist, picked,
    )  # fmt: skip
    res = await svc.gateway.call(ch, cmd)
    if sale_id is not None and res.ok:
        svc.room.booked(sale_id, user.id)  # the automatic policy admits more
    return answer(ch, res)


async def _own_booking(request: Request) -> tuple[Services, str, str, Channel]:
    """(services, user id, booking id, its route's channel) for a booking path."""
    svc = services(request)
    user = svc.auth.user(request.headers.get("authorization"))
    booking_id = request.path_params["booking_id"]
    try:
        ch = await svc.gateway.channel(route_of_booking(booking_id))
    except NoSuchRoute:
        raise Problem("not-found", f"There is no booking {booking_id} for you.") from None
    return svc, user.id, booking_id, ch


async def _booking_command(request: Request, make: type[GetBooking | Confirm | Cancel]) -> Response:
    svc, user, booking_id, ch = await _own_booking(request)
    return answer(ch, await svc.gateway.call(ch, make(booking_id, user)))


@endpoint("get_booking")
async def get_booking(request: Request) -> Response:
    return await _booking_command(request, GetBooking)


@endpoint("confirm")
async def confirm(request: Request) -> Response:
    return await _booking_command(request, Confirm)


@endpoint("cancel")
async def cancel(request: Request) -> Response:
    return await _booking_command(request, Cancel)


@endpoint("change")
async def change(request: Request) -> Response:
    svc, user, booking_id, ch = await _own_booking(request)
    body = await read_json(request, schemas.change_in)
    trip(ch, body.from_, body.to, body.klass)
    cmd = Change(booking_id, user, body.from_, body.to, body.klass)
    return answer(ch, await svc.gateway.call(ch, cmd))


@endpoint("own_bookings")
async def own_bookings(request: Request) -> Response:
    """The caller's own bookings, newest first, from the user index: never a route actor."""
    svc = services(request)
    user = svc.auth.user(request.headers.get("authorization"))
    q = query.params(request, ("limit", "cursor"))
    limit = query.whole("limit", q.get("limit"), *query.BOOKINGS_PAGE)
    after = query.cursor(q.get("cursor"), is_member)
    records, last = await svc.users.page(user.id, after, limit)
    out = []
    for rec in records:
        # the route's definition only (cached after the first read): never its actor
        ch = await svc.gateway.channel(route_of_booking(rec.booking_id))
        out.append(render.view(ch.route).booking(rec))
    return json_response({"bookings": out, "next_cursor": last})

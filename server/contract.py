"""The HTTP contract: every endpoint of the API and the web console, once.

The Starlette routes (`server/app.py`) and /openapi.json (`server/api/openapi.py`) are
both made from this table, in its order: Starlette tries routes in turn (~5 µs each), so
the booking hot path comes first. Adding an endpoint is adding a row here; the schema
tests then fuzz it with the rest (docs/architecture.md, "The HTTP contract's rules").
"""

from __future__ import annotations

from actors.storage.formats import MEMBER_PATTERN
from server.api import bookings, routes, sales, search, system
from server.api import schemas as api
from server.api.endpoint import (
    ADMIN_ERRORS,
    BODY_ERRORS,
    BOOKING_ID,
    CALL_ERRORS,
    DATE,
    IDEMPOTENCY_KEY,
    JSON,
    ROUTE_ID,
    ROUTE_ID_PATTERN,
    STATION,
    Endpoint,
    Param,
    Reply,
    integer,
    page,
    path_param,
    query,
)
from server.console import admin, pages, seats
from server.console import payloads as console
from server.waiting.sales import SaleIn, SalePatch

#: what every call about one booking of the caller's can answer besides its own problems
_BOOKING = ("unauthorized", "not-found", *CALL_ERRORS)
_TRIP = (query("from", "Boarding station", required=True, **STATION),
         query("to", "Destination station", required=True, **STATION))  # fmt: skip
_STATIC = ("text/css", "text/javascript", "image/svg+xml")
SALE_ID = path_param("sale_id")
ADMISSION: Param = {
    "name": "Admission",
    "in": "header",
    "required": False,
    "description": "Needed while the route is in a running sale: the admission its queue gave",
    "schema": {"type": "string", "maxLength": 512},
}
QUEUE_TICKET: Param = {
    "name": "Queue-Ticket",
    "in": "header",
    "required": False,
    "description": "The ticket your join answered: polls are then answered from it",
    "schema": {"type": "string", "maxLength": 512},
}


def _html(description: str) -> dict[int, Reply]:
    return {200: Reply(description, media=("text/html",))}


ENDPOINTS: list[Endpoint] = [
    # ---- bookings: the hot path first ----
    Endpoint(
        "POST", "/v1/routes/{route_id}/bookings", bookings.book, "Book seats (held until paid)",
        {201: Reply("Held", api.BookingOut), 202: Reply("Waitlisted", api.BookingOut)},
        (*BODY_ERRORS, *_BOOKING, "missing-idempotency-key", "bad-request", "sold-out",
         "passenger-conflict", "unknown-station", "unknown-class", "bad-trip",
         "idempotency-mismatch", "too-many-bookings", "not-admitted"),
        (ROUTE_ID, IDEMPOTENCY_KEY, ADMISSION), api.BookingIn, auth=True,
    ),
    Endpoint(
        "GET", "/v1/routes/{route_id}/availability", routes.availability,
        "Exact free seats per class for a trip",
        {200: Reply("Free seats", api.AvailabilityOut)},
        ("not-found", "validation", "unknown-station", "bad-trip", *CALL_ERRORS),
        (ROUTE_ID, query("from", "Boarding station", required=True, minLength=1),
         query("to", "Destination station", required=True, minLength=1)),
    ),
    # ---- routes and search ----
    Endpoint(
        "POST", "/v1/routes", routes.create_route, "Create a route (admin)",
        {201: Reply("Created", api.RouteOut), 200: Reply("Identical route exists", api.RouteOut)},
        (*BODY_ERRORS, "unauthorized", "forbidden", "route-conflict", "unavailable"),
        body=api.RouteIn, auth=True,
    ),
    Endpoint(
        "GET", "/v1/search", search.search,
        "Every train of a date stopping at 'from' and later at 'to', with exact free seats "
        "per class",
        {200: Reply("Trains", api.SearchOut)},
        ("validation", "bad-trip", "not-found", "unavailable"),
        (*_TRIP, query("date", "Travel date (YYYY-MM-DD)", required=True, **DATE),
         query("class", "Only trains with this seat class", minLength=1, maxLength=32),
         integer("seats", "Only trains with at least this many free seats (in 'class' if "
                 "given, else in some class)", 1, 5)),
    ),
    Endpoint(
        "GET", "/v1/bookings", bookings.own_bookings,
        "Your own bookings across all routes, newest first, in pages",
        {200: Reply("Your bookings", api.OwnBookingList)},
        ("unauthorized", "validation", "unavailable"), page(100, 20, MEMBER_PATTERN), auth=True,
    ),
    Endpoint(
        "GET", "/v1/routes", routes.list_routes,
        "List routes by id, in pages; filter by date and/or station",
        {200: Reply("A page of routes", api.RouteList)},
        # 503: the front end could not read the definitions from Redis
        ("validation", "unavailable"),
        (query("date", "Only routes of this date (YYYY-MM-DD)", **DATE),
         query("station", "Only routes stopping at this station", **STATION),
         *page(1000, 100, ROUTE_ID_PATTERN)),
    ),
    Endpoint(
        "GET", "/v1/routes/{route_id}", routes.get_route, "A route's definition",
        {200: Reply("The route", api.RouteOut)}, ("not-found", "unavailable"), (ROUTE_ID,),
    ),
    Endpoint(
        "GET", "/v1/routes/{route_id}/bookings", routes.route_bookings,
        "Every booking of the route, with seats (admin)",
        {200: Reply("Bookings", api.BookingList)}, (*_BOOKING, "forbidden"), (ROUTE_ID,),
        auth=True,
    ),
    # ---- one booking of the caller's ----
    Endpoint(
        "GET", "/v1/bookings/{booking_id}", bookings.get_booking, "One of your bookings",
        {200: Reply("The booking", api.BookingOut)}, _BOOKING, (BOOKING_ID,), auth=True,
    ),
    Endpoint(
        "DELETE", "/v1/bookings/{booking_id}", bookings.cancel,
        "Cancel (or refund) a booking; its seats return to sale",
        {200: Reply("Cancelled", api.BookingOut)}, (*_BOOKING, "invalid-state"), (BOOKING_ID,),
        auth=True,
    ),
    Endpoint(
        "POST", "/v1/bookings/{booking_id}/confirm", bookings.confirm, "Pay for a held booking",
        {200: Reply("Confirmed", api.BookingOut)},
        (*_BOOKING, "invalid-state", "hold-expired"), (BOOKING_ID,), auth=True,
    ),
    Endpoint(
        "POST", "/v1/bookings/{booking_id}/change", bookings.change,
        "Change trip and/or class atomically (改签)",
        {200: Reply("Changed", api.BookingOut)},
        (*BODY_ERRORS, *_BOOKING, "invalid-state", "sold-out", "passenger-conflict",
         "unknown-station", "unknown-class", "bad-trip"),
        (BOOKING_ID,), api.ChangeIn, auth=True,
    ),
    # ---- sales and their waiting rooms ----
    Endpoint(
        "POST", "/v1/sales", sales.create_sale, "Open a sale on routes at a time (admin)",
        {201: Reply("Created", api.SaleOut)},
        (*BODY_ERRORS, "unauthorized", "forbidden", "not-found", "sale-conflict"),
        body=SaleIn, auth=True,
    ),
    Endpoint(
        "GET", "/v1/sales", sales.list_sales,
        "Every sale, latest opening first, with its queue's figures; ?route= only that "
        "route's",
        {200: Reply("The sales", api.SaleList)}, ("unauthorized", "validation"),
        (query("route", "Only the sales of this route", pattern=ROUTE_ID_PATTERN),), auth=True,
        description="Answered from this front end's memory of the sales, which its keeper "
        "refreshes a few times a second: a sale made through another front end may take a "
        "moment to appear.",
    ),
    Endpoint(
        "GET", "/v1/sales/{sale_id}", sales.get_sale, "A sale: its routes, time, state, queue",
        {200: Reply("The sale", api.SaleOut)}, ("unauthorized", "not-found", "unavailable"),
        (SALE_ID,), auth=True,
    ),
    Endpoint(
        "PATCH", "/v1/sales/{sale_id}", sales.change_sale,
        "Pause, resume or close a sale, or change its admission rate (admin)",
        {200: Reply("The sale", api.SaleOut)},
        (*BODY_ERRORS, "unauthorized", "forbidden", "not-found", "invalid-state"),
        (SALE_ID,), SalePatch, auth=True,
    ),
    Endpoint(
        "POST", "/v1/sales/{sale_id}/queue", sales.join_queue,
        "Join the sale's queue (one place per user: joining again answers the same place)",
        {200: Reply("Your place", api.QueueOut)},
        ("unauthorized", "not-found", "invalid-state", "unavailable"), (SALE_ID,), auth=True,
    ),
    Endpoint(
        "GET", "/v1/sales/{sale_id}/queue", sales.poll_queue,
        "Your place in the sale's queue, the people ahead, the wait, and your admission",
        {200: Reply("Your place", api.QueueOut)},
        ("unauthorized", "not-found", "polling-too-fast", "unavailable"),
        (SALE_ID, QUEUE_TICKET), auth=True,
    ),
    # ---- operations ----
    Endpoint("GET", "/healthz", system.healthz, "Liveness", {200: Reply("Alive", api.Health)}),
    Endpoint(
        "GET", "/readyz", system.readyz, "Readiness: Redis and Ray answer",
        {200: Reply("Ready", api.Health), 503: Reply("Not ready", api.Health)},
    ),
    Endpoint(
        "GET", "/metrics", system.metrics_endpoint, "Prometheus metrics",
        {200: Reply("Metrics", media=("text/plain",))},
    ),
    Endpoint(
        "GET", "/openapi.json", system.openapi_endpoint, "This document",
        {200: Reply("OpenAPI", media=(JSON,))},
    ),
    # ---- the web console (server/console): its JSON, pages and files ----
    Endpoint(
        "GET", "/v1/routes/{route_id}/seats", seats.seats_endpoint,
        "Every seat of the train, free or taken for the trip from 'from' to 'to' (the web "
        "console's seat map)",
        {200: Reply("The seats", console.SeatsOut)},
        ("not-found", "validation", "unknown-station", "bad-trip", "unavailable"),
        (ROUTE_ID, *_TRIP),
        description="Served from the front end's seat map of the route, at most "
        "TICKETD_AVAILABILITY_REFRESH old; a seat is taken if any segment of the trip is.",
    ),
    Endpoint(
        "GET", "/v1/admin/routes", admin.admin_routes,
        "Every route of a date with seats sold, held, waitlisted and free (admin)",
        {200: Reply("Routes", console.AdminRoutes)}, (*ADMIN_ERRORS, "unavailable"),
        (query("date", "Travel date (YYYY-MM-DD)", required=True, format="date"),), auth=True,
    ),
    Endpoint(
        "GET", "/v1/admin/sales", admin.admin_sales,
        "The sales curve of this front end: per second bookings, refusals, 503s and seats "
        "left (admin)",
        {200: Reply("The curve", console.Sales)}, ADMIN_ERRORS,
        (integer("seconds", "How far back", 1, 600, 300),), auth=True,
    ),
    Endpoint(
        "GET", "/v1/admin/actors", admin.admin_actors,
        "The cluster's route actors: node, pid, epoch, recovery time, events, idle or active "
        "(admin)",
        {200: Reply("Actors", console.Actors)}, (*ADMIN_ERRORS, "unavailable"), auth=True,
    ),
    Endpoint(
        "GET", "/v1/admin/frontend", admin.admin_frontend,
        "This front end over the last minute: batch sizes, queue depth, p99s, 503 share "
        "(admin)",
        {200: Reply("Figures", console.Frontend)}, ADMIN_ERRORS, auth=True,
    ),
    Endpoint(
        "GET", "/", pages.buyer_page,
        "Web console: find a train (HTML; ?from=&to=&date= searches at once)",
        _html("The buyer page"),
    ),
    Endpoint(
        "GET", "/routes/{route_id}", pages.seat_map_page,
        "Web console: the seat map of a train (HTML; ?from=&to= picks the trip)",
        _html("The seat map page"), params=(ROUTE_ID,),
    ),
    Endpoint(
        "GET", "/ops", pages.ops_page,
        "Web console: the operator page (HTML; needs an admin token pasted in)",
        _html("The operator page"),
    ),
    Endpoint(
        "GET", "/console/{name}", pages.static_file,
        "A static file of the web console (CSS, JavaScript module, icon)",
        {200: Reply("The file", media=_STATIC)}, ("not-found",), (path_param("name"),),
    ),
]  # fmt: skip

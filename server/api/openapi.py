"""/openapi.json: the OpenAPI 3.1 document, generated from the types in server/api/schemas.py."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from actors.storage.user_index import MEMBER_PATTERN
from server.api import schemas
from server.api.problems import STATUS

REF = "#/components/schemas/{name}"


def _problem(*slugs: str) -> dict[str, Any]:
    return {
        "description": "Problem: " + ", ".join(slugs),
        "content": {
            "application/problem+json": {"schema": {"$ref": REF.format(name="ProblemOut")}}
        },
    }


def _json(name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}},
    }


def _responses(ok: dict[str, dict[str, Any]], *slugs: str) -> dict[str, Any]:
    out: dict[str, Any] = dict(ok)
    by_status: dict[int, list[str]] = {}
    for slug in slugs:
        by_status.setdefault(STATUS[slug][0], []).append(slug)
    for status, group in sorted(by_status.items()):
        out[str(status)] = _problem(*group)
    return out


_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
_BODY_ERRORS = ("malformed-json", "validation", "payload-too-large", "unsupported-media-type")
_AUTH_ERRORS = ("unauthorized",)
_CALL_ERRORS = ("unavailable", "overloaded")
_ROUTE_ID = {"name": "route_id", "in": "path", "required": True, "schema": {"type": "string"}}
_BOOKING_ID = {"name": "booking_id", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Unique per booking attempt; a retry with the same key and body gets the "
    "first answer.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[!-~]+$"},
}


def _query(name: str, description: str, required: bool = False, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


ROUTE_ID_PATTERN = "^[A-Z0-9]{1,12}-[0-9]{8}$"
_DATE: dict[str, Any] = {"format": "date", "examples": ["2026-12-01"]}
_STATION: dict[str, Any] = {"minLength": 1, "maxLength": 64}


def _page(most: int, default: int, cursor: str) -> list[dict[str, Any]]:
    limit = {"name": "limit", "in": "query", "required": False, "description": "Items per page",
             "schema": {"type": "integer", "minimum": 1, "maximum": most, "default": default}}  # fmt: skip
    return [limit, _query("cursor", "next_cursor of the previous page", pattern=cursor)]


def _body(name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": REF.format(name=name)}}},
    }


def _paths() -> dict[str, Any]:
    booking_errors = (*_AUTH_ERRORS, "not-found", *_CALL_ERRORS)
    return {
        "/v1/routes": {
            "post": {
                "summary": "Create a route (admin)",
                "security": _AUTH,
                "requestBody": _body("RouteIn"),
                "responses": _responses(
                    {"201": _json("RouteOut", "Created"), "200": _json("RouteOut", "Identical route exists")},
                    *_BODY_ERRORS, *_AUTH_ERRORS, "forbidden", "route-conflict", "unavailable",
                ),
            },
            # 503: the front end could not read the definitions from Redis
            "get": {
                "summary": "List routes by id, in pages; filter by date and/or station",
                "parameters": [
                    _query("date", "Only routes of this date (YYYY-MM-DD)", **_DATE),
                    _query("station", "Only routes stopping at this station", **_STATION),
                    *_page(1000, 100, ROUTE_ID_PATTERN),
                ],
                "responses": _responses({"200": _json("RouteList", "A page of routes")}, "validation", "unavailable"),
            },
        },
        "/v1/search": {
            "get": {
                "summary": "Every train of a date stopping at 'from' and later at 'to', with exact free seats per class",
                "parameters": [
                    _query("from", "Boarding station", required=True, **_STATION),
                    _query("to", "Destination station", required=True, **_STATION),
                    _query("date", "Travel date (YYYY-MM-DD)", required=True, **_DATE),
                    _query("class", "Only trains with this seat class", minLength=1, maxLength=32),
                    {"name": "seats", "in": "query", "required": False,
                     "description": "Only trains with at least this many free seats (in 'class' if given, else in some class)",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 5}},
                ],
                "responses": _responses(
                    {"200": _json("SearchOut", "Trains")},
                    "validation", "bad-trip", "not-found", "unavailable",
                ),
            }
        },
        "/v1/bookings": {
            "get": {
                "summary": "Your own bookings across all routes, newest first, in pages",
                "security": _AUTH,
                "parameters": _page(100, 20, MEMBER_PATTERN),
                "responses": _responses(
                    {"200": _json("OwnBookingList", "Your bookings")},
                    *_AUTH_ERRORS, "validation", "unavailable",
                ),
            }
        },
        "/v1/routes/{route_id}": {
            "get": {
                "summary": "A route's definition",
                "parameters": [_ROUTE_ID],
                "responses": _responses({"200": _json("RouteOut", "The route")}, "not-found", "unavailable"),
            }
        },
        "/v1/routes/{route_id}/availability": {
            "get": {
                "summary": "Exact free seats per class for a trip",
                "parameters": [
                    _ROUTE_ID,
                    {"name": "from", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}},
                    {"name": "to", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}},
                ],
                "responses": _responses(
                    {"200": _json("AvailabilityOut", "Free seats")},
                    "not-found", "validation", "unknown-station", "bad-trip", *_CALL_ERRORS,
                ),
            }
        },
        "/v1/routes/{route_id}/bookings": {
            "post": {
                "summary": "Book seats (held until paid)",
                "security": _AUTH,
                "parameters": [_ROUTE_ID, _KEY],
                "requestBody": _body("BookingIn"),
                "responses": _responses(
                    {"201": _json("BookingOut", "Held"), "202": _json("BookingOut", "Waitlisted")},
                    *_BODY_ERRORS, *booking_errors, "missing-idempotency-key", "bad-request",
                    "sold-out", "passenger-conflict", "unknown-station", "unknown-class",
                    "bad-trip", "idempotency-mismatch", "too-many-bookings",
                ),
            },
            "get": {
                "summary": "Every booking of the route, with seats (admin)",
                "security": _AUTH,
                "parameters": [_ROUTE_ID],
                "responses": _responses(
                    {"200": _json("BookingList", "Bookings")}, *booking_errors, "forbidden"
                ),
            },
        },
        "/v1/bookings/{booking_id}": {
            "get": {
                "summary": "One of your bookings",
                "security": _AUTH,
                "parameters": [_BOOKING_ID],
                "responses": _responses({"200": _json("BookingOut", "The booking")}, *booking_errors),
            },
            "delete": {
                "summary": "Cancel (or refund) a booking; its seats return to sale",
                "security": _AUTH,
                "parameters": [_BOOKING_ID],
                "responses": _responses(
                    {"200": _json("BookingOut", "Cancelled")}, *booking_errors, "invalid-state"
                ),
            },
        },
        "/v1/bookings/{booking_id}/confirm": {
            "post": {
                "summary": "Pay for a held booking",
                "security": _AUTH,
                "parameters": [_BOOKING_ID],
                "responses": _responses(
                    {"200": _json("BookingOut", "Confirmed")},
                    *booking_errors, "invalid-state", "hold-expired",
                ),
            }
        },
        "/v1/bookings/{booking_id}/change": {
            "post": {
                "summary": "Change trip and/or class atomically (改签)",
                "security": _AUTH,
                "parameters": [_BOOKING_ID],
                "requestBody": _body("ChangeIn"),
                "responses": _responses(
                    {"200": _json("BookingOut", "Changed")},
                    *_BODY_ERRORS, *booking_errors, "invalid-state", "sold-out",
                    "passenger-conflict", "unknown-station", "unknown-class", "bad-trip",
                ),
            }
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _json("Health", "Alive")}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: Redis and Ray answer",
                "responses": {"200": _json("Health", "Ready"), "503": _json("Health", "Not ready")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "OpenAPI", "content": {"application/json": {"schema": {"type": "object"}}}}},
            }
        },
    }  # fmt: skip


@functools.cache
def document() -> bytes:
    """The whole contract as OpenAPI 3.1 JSON (built once)."""
    types = [
        schemas.RouteIn, schemas.RouteOut, schemas.RouteList, schemas.BookingIn,
        schemas.ChangeIn, schemas.BookingOut, schemas.AdminBookingOut, schemas.BookingList,
        schemas.AvailabilityOut, schemas.ProblemOut, schemas.Health, schemas.OwnBookingList,
        schemas.SearchOut, schemas.TrainOut,
    ]  # fmt: skip
    # the web console's endpoints (imported here: server/console/doc.py uses this module)
    from server.console import doc as console_doc

    types += console_doc.TYPES
    _, components = msgspec.json.schema_components(types, ref_template=REF)
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "ticketd",
            "version": "1.0.0",
            "description": "Train-ticket booking: routes, exact availability, holds, payment.",
        },
        "paths": {**_paths(), **console_doc.paths()},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
    return msgspec.json.encode(doc)

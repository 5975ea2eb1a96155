"""The console's JSON endpoints in /openapi.json (merged in by server/api/openapi.py)."""

from __future__ import annotations

from typing import Any

from server.api.openapi import _AUTH, _ROUTE_ID, _STATION, _json, _query, _responses
from server.console import schemas as out

TYPES = [out.SeatsOut, out.AdminRoutes, out.Sales, out.Actors, out.Frontend]
_ADMIN_ERRORS = ("unauthorized", "forbidden", "validation")


def _html(description: str) -> dict[str, Any]:
    return {
        "200": {
            "description": description,
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    }


_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def paths() -> dict[str, Any]:
    """Path items of the console: its pages (HTML), the seat map and the operator's JSON."""
    return {
        "/": {"get": {"summary": "Web console: find a train (HTML; ?from=&to=&date= searches at once)", "responses": _html("The buyer page")}},
        "/routes/{route_id}": {"get": {"summary": "Web console: the seat map of a train (HTML; ?from=&to= picks the trip)", "parameters": [_ROUTE_ID], "responses": _html("The seat map page")}},
        "/ops": {"get": {"summary": "Web console: the operator page (HTML; needs an admin token pasted in)", "responses": _html("The operator page")}},
        "/console/{name}": {
            "get": {
                "summary": "A static file of the web console (CSS, JavaScript module, icon)",
                "parameters": [_NAME],
                "responses": _responses(
                    {"200": {"description": "The file", "content": {t: {"schema": {"type": "string"}} for t in ("text/css", "text/javascript", "image/svg+xml")}}},
                    "not-found",
                ),
            }
        },
        "/v1/routes/{route_id}/seats": {
            "get": {
                "summary": "Every seat of the train, free or taken for the trip from 'from' to 'to' (the web console's seat map)",
                "description": "Served from the front end's seat map of the route, at most TICKETD_AVAILABILITY_REFRESH old; a seat is taken if any segment of the trip is.",
                "parameters": [
                    _ROUTE_ID,
                    _query("from", "Boarding station", required=True, **_STATION),
                    _query("to", "Destination station", required=True, **_STATION),
                ],
                "responses": _responses(
                    {"200": _json("SeatsOut", "The seats")},
                    "not-found", "validation", "unknown-station", "bad-trip", "unavailable",
                ),
            }
        },
        "/v1/admin/routes": {
            "get": {
                "summary": "Every route of a date with seats sold, held, waitlisted and free (admin)",
                "security": _AUTH,
                "parameters": [_query("date", "Travel date (YYYY-MM-DD)", required=True, format="date")],
                "responses": _responses({"200": _json("AdminRoutes", "Routes")}, *_ADMIN_ERRORS, "unavailable"),
            }
        },
        "/v1/admin/sales": {
            "get": {
                "summary": "The sales curve of this front end: per second bookings, refusals, 503s and seats left (admin)",
                "security": _AUTH,
                "parameters": [
                    {"name": "seconds", "in": "query", "required": False, "description": "How far back",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 600, "default": 300}},
                ],
                "responses": _responses({"200": _json("Sales", "The curve")}, *_ADMIN_ERRORS),
            }
        },
        "/v1/admin/actors": {
            "get": {
                "summary": "The cluster's route actors: node, pid, epoch, recovery time, events, idle or active (admin)",
                "security": _AUTH,
                "responses": _responses({"200": _json("Actors", "Actors")}, *_ADMIN_ERRORS, "unavailable"),
            }
        },
        "/v1/admin/frontend": {
            "get": {
                "summary": "This front end over the last minute: batch sizes, queue depth, p99s, 503 share (admin)",
                "security": _AUTH,
                "responses": _responses({"200": _json("Frontend", "Figures")}, *_ADMIN_ERRORS),
            }
        },
    }  # fmt: skip

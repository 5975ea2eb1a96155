"""`GET /v1/search`: every train of a date from A to B with seats per class.

Answers from the search read model (server/catalog/finder.py): the station index
of the date and the front end's availability snapshots, never one actor call per
request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.api import query
from server.api.common import endpoint
from server.api.problems import Problem
from server.api.services import services


@endpoint("search")
async def search(request: Request) -> Response:
    finder = services(request).search
    raw: bytes = request.scope["query_string"]
    body = finder.cached(raw)
    if body is not None:
        return Response(body, media_type="application/json")
    q = query.params(request, ("from", "to", "date", "class", "seats"))
    date = query.date(q.get("date"), required=True)
    assert date is not None
    from_, to = query.station("from", q.get("from")), query.station("to", q.get("to"))
    if from_ == to:
        raise Problem(
            "bad-trip", f"'from' and 'to' are both {from_!r}; 'to' must be a different station."
        )
    klass = q.get("class")
    if klass is not None and not 1 <= len(klass) <= 32:
        raise Problem("validation", "Give 'class' as a seat class name, e.g. ?class=second.")
    seats = query.whole("seats", q.get("seats"), 0, query.MAX_PARTY)
    index = await finder.date(date)
    for station in (from_, to):
        if station not in index.stops and not await finder.station_known(station):
            # 404, not the 422 of a trip on a known route: the station itself is not there
            raise Problem(
                "not-found",
                f"No train stops at {station!r}; check the spelling (GET /v1/routes lists "
                "routes with their stations).",
                station=station,
            )
    body = await finder.answer(raw, date, from_, to, klass, seats)
    return Response(body, media_type="application/json")

"""The ceiling: a bare Starlette endpoint under uvicorn (uvloop + httptools) with
--workers processes (bench/throughput.py gives it one per core: the node's ceiling).

It takes the very requests the booking benchmark sends (same path, headers and
body), reads the body and answers 201 with a small constant JSON: all that is
left is ASGI, HTTP parsing and Starlette routing. Queue joins and polls (the
waiting-room benchmark) get a constant answer of a queue's size.

    .venv/bin/python bench/apps/bare.py --port 8101 --workers 2
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = b'{"booking_id":"B1-20261201-000000000000000000000000","status":"held"}'


async def book(request: Request) -> Response:
    await request.body()
    return Response(_BODY, status_code=201, media_type="application/json")


_QUEUE = (
    b'{"state":"not-open","place":null,"ahead":null,"eta_seconds":null,'
    b'"poll_after_seconds":1.0,"admission":null,"ticket":"laF0sVM3MDRkNmQ5ZjhhMzZmNmEwpW'
    b'FsaWNlAMtB2sXRmTcd8A.IO-fl2yATplIGHhfl96v1NEAE6QBdQI1V4aM2Kf9aIA","waitlist":false}'
)


async def queue(request: Request) -> Response:
    """A sale's queue, joined or polled: the waiting-room benchmark's ceiling."""
    return Response(_QUEUE, media_type="application/json")


async def readyz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/v1/routes/{route_id}/bookings", book, methods=["POST"]),
        Route("/v1/sales/{sale_id}/queue", queue, methods=["GET", "POST"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    # the same server settings as server/__main__.py; workers import the app by name
    # (this directory is on their sys.path, as it is on ours)
    uvicorn.run(
        "bare:app",
        workers=args.workers,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


if __name__ == "__main__":
    main()

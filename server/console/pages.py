"""The console's HTML pages and their static files, served from the package itself.

No build step and nothing from another origin: every page carries a
Content-Security-Policy that allows only this origin.
"""

from __future__ import annotations

import functools
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from server.api.common import endpoint
from server.api.problems import Problem

STATIC = Path(__file__).parent / "static"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # the pages are small and change with a deploy: always ask, answers are cheap
    "Cache-Control": "no-cache",
}


@functools.cache
def _files() -> dict[str, tuple[bytes, str]]:
    """Every file shipped in static/ by name, read once (nothing else is ever served)."""
    return {
        path.name: (path.read_bytes(), _TYPES[path.suffix])
        for path in STATIC.iterdir()
        if path.is_file() and path.suffix in _TYPES
    }


def _serve(name: str) -> Response:
    found = _files().get(name)
    if found is None:
        raise Problem("not-found", f"There is no console file {name}.")
    body, kind = found
    return Response(body, media_type=kind, headers=HEADERS)


@endpoint("console_page")
async def buyer_page(request: Request) -> Response:
    return _serve("buyer.html")


@endpoint("console_page")
async def seat_map_page(request: Request) -> Response:
    # the page reads the route id from its own path and asks the API about it, so an
    # unknown route shows the API's sentence on the page
    return _serve("seatmap.html")


@endpoint("console_page")
async def ops_page(request: Request) -> Response:
    return _serve("ops.html")


@endpoint("console_static")
async def static_file(request: Request) -> Response:
    return _serve(request.path_params["name"])

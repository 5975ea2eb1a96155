"""Operations endpoints (liveness, readiness, metrics, the OpenAPI document) and the
problem answers for what no endpoint handles (404, 405, the unexpected)."""

from __future__ import annotations

import os

import structlog
from prometheus_client import generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server import metrics
from server.api.common import json_response
from server.api.problems import problem_response
from server.api.services import services
from server.boot.runtime import Runtime

log = structlog.get_logger("ticketd.app")


_WORKER = os.environ.get("TICKETD_WORKER_INDEX")
_PROCESS = {"pid": os.getpid(), "worker": int(_WORKER) if _WORKER else None}


async def healthz(request: Request) -> Response:
    # which process answered: with several workers per node, an operator (and the tests)
    # can tell them apart behind the shared port
    return json_response({"status": "ok", **_PROCESS})


async def readyz(request: Request) -> Response:
    checks = await services(request).gateway.ready()
    runtime: Runtime | None = request.app.state.runtime
    problem = None if runtime is None else runtime.redis_problem()
    if problem is not None:
        # the supervisor knows more than a failed PING: why, and what it does about it
        checks["redis"] = f"failing: {problem}"
    ok = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, 200 if ok else 503
    )


async def metrics_endpoint(request: Request) -> Response:
    metrics.QUEUE_DEPTH.set(services(request).gateway.queue_depth())
    return Response(generate_latest(metrics.REGISTRY), media_type="text/plain; version=0.0.4")


async def openapi_endpoint(request: Request) -> Response:
    # made from the table of endpoints when the app is (server/app.py)
    return Response(request.app.state.openapi, media_type="application/json")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        # RFC 9110 §15.5.6: a 405 must carry Allow. Starlette's own names only the first
        # route matching the path, and some paths are served by two routes (GET and POST)
        path = request.scope["path"]
        routes = [r for r in request.app.routes if isinstance(r, Route)]
        allow = {m for r in routes if r.path_regex.match(path) for m in r.methods or ()}
        return problem_response(
            "method-not-allowed",
            f"{request.method} is not allowed here.",
            headers={"Allow": ", ".join(sorted(allow))},
        )
    if exc.status_code == 404:
        return problem_response("not-found", f"There is nothing at {request.url.path}.")
    return problem_response("bad-request", str(exc.detail))


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path)
    return problem_response("internal", "Something went wrong on our side; it has been logged.")

"""HTTP plumbing shared by the endpoints: bodies, JSON answers, problem mapping, metrics."""

from __future__ import annotations

import functools
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
import redis
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive

from actors.domain.errors import DomainError
from server import metrics
from server.api.problems import Problem, problem_response
from server.dispatch.errors import DispatchError

log = structlog.get_logger("ticketd.http")

MAX_BODY = 64 * 1024
T = TypeVar("T")
Handler = Callable[[Request], Awaitable[Response]]

_BOOKING_ID = re.compile(r"^([A-Z0-9]{1,12}-[0-9]{8})-[0-9a-f]{24}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON answer encoded by msgspec (structs and plain data alike)."""
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def raw_headers(request: Request) -> dict[bytes, str]:
    """The request's headers by lower-case name (the last of repeated ones), decoded."""
    return {k: v.decode("latin-1") for k, v in request.scope["headers"]}


async def read_json(
    request: Request, decoder: msgspec.json.Decoder[T], headers: dict[bytes, str] | None = None
) -> T:
    """The request body decoded strictly; 413/415/400/422 problems otherwise."""
    if headers is None:
        headers = raw_headers(request)
    check_body_headers(headers)
    return decode_json(await receive_body(request.receive), decoder)


def check_body_headers(headers: dict[bytes, str]) -> None:
    """415 for a body that says it is not JSON, 413 for one that says it is too large."""
    ctype = headers.get(b"content-type")
    if ctype is not None and "json" not in ctype.lower():
        raise Problem("unsupported-media-type", "Send the body as application/json.")
    length = headers.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise _too_large()


def _too_large() -> Problem:
    return Problem("payload-too-large", f"Request bodies are limited to {MAX_BODY} bytes.")


async def receive_body(receive: Receive) -> bytes:
    """A request's body from its ASGI messages; 413 past MAX_BODY."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > MAX_BODY:
            raise _too_large()
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] != "http.request":
            break  # the client left; what came is all there is
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(raw: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """A body decoded strictly; 400 malformed-json or 422 validation otherwise."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        # msgspec stops at the first wrong type, so a body that is not JSON at all further on
        # (a trailing comma, a cut-off end) would be called merely invalid: malformed wins
        if not _well_formed(raw):
            raise Problem("malformed-json", "The request body is not valid JSON.") from None
        raise Problem("validation", f"The request body is invalid: {exc}.") from None
    except msgspec.DecodeError as exc:
        raise Problem("malformed-json", f"The request body is not valid JSON ({exc}).") from None


def _well_formed(raw: bytes) -> bool:
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    except RecursionError:
        return True  # too deeply nested to check here; the validation error stands
    return True


def route_of_booking(booking_id: str) -> str:
    """The route id inside a booking id; 404 if the id is not one of ours."""
    m = _BOOKING_ID.fullmatch(booking_id)
    if m is None:
        raise Problem("not-found", f"There is no booking {booking_id} for you.")
    return m.group(1)


class _RandomPool:
    """Bytes from the OS's CSPRNG, read 4 KiB at a time instead of 12 bytes a booking."""

    def __init__(self, chunk: int = 4096) -> None:
        self._chunk = chunk
        self._buf = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        if self._at + n > len(self._buf):
            self._buf, self._at = secrets.token_bytes(self._chunk), 0
        out = self._buf[self._at : self._at + n]
        self._at += n
        return out


_random = _RandomPool()


def new_booking_id(route_id: str) -> str:
    """Unguessable (96 random bits) and names its route, so no lookup is needed."""
    return f"{route_id}-{_random.take(12).hex()}"


def idempotency_key(key: str | None) -> str:
    """The Idempotency-Key header's value, required on booking creation."""
    if key is None:
        raise Problem(
            "missing-idempotency-key",
            "Send an Idempotency-Key header (e.g. a UUID) so a retried booking is not doubled.",
        )
    if not _KEY.fullmatch(key):
        raise Problem(
            "bad-request", "Idempotency-Key must be 1-128 visible ASCII characters, no spaces."
        )
    return key


class Guard:
    """One endpoint's error mapping and metrics: Problems become responses, a 500 never
    leaks its body, every answer is counted by method and status and timed."""

    __slots__ = ("_counters", "_latency", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._latency = metrics.LATENCY.labels(name)
        # labelled children resolved once: labels() takes a lock and builds a tuple
        self._counters: dict[tuple[str, int], Any] = {}

    async def run(self, method: str, answer: Awaitable[Response]) -> Response:
        """Await the endpoint's answer, mapping what it raises."""
        started = time.perf_counter()
        try:
            response = await answer
        except Problem as p:
            response = problem_response(p.type, p.detail, p.extra)
        except (DomainError, DispatchError) as err:  # input checked by the domain's rules,
            # or a route's actor out of reach: each error carries its problem type and data
            response = problem_response(err.type, err.detail, err.data)
        except redis.RedisError as exc:
            # the front end's own Redis reads (route definitions): a client can retry
            log.warning("redis unavailable", endpoint=self.name, error=repr(exc))
            response = problem_response("unavailable", "Storage is not answering; retry.")
        except Exception:
            log.exception("unhandled error", endpoint=self.name)
            response = problem_response(
                "internal", "Something went wrong on our side; it has been logged."
            )
        status = response.status_code
        counter = self._counters.get((method, status))
        if counter is None:
            counter = metrics.REQUESTS.labels(self.name, method, str(status))
            self._counters[(method, status)] = counter
        counter.inc()
        self._latency.observe(time.perf_counter() - started)
        return response


def endpoint(name: str) -> Callable[[Handler], Handler]:
    """Map Problems to responses, never leak a 500 body, and record metrics."""

    def wrap(fn: Handler) -> Handler:
        guard = Guard(name)

        @functools.wraps(fn)
        async def handler(request: Request) -> Response:
            return await guard.run(request.method, fn(request))

        return handler

    return wrap

"""A thin asyncio HTTP client for ticketd: one keep-alive aiohttp session, one method per call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import quote

import aiohttp

from loadgen.auth import Tokens
from loadgen.wire import BookingRequest, Problem, RouteDef, decode, encode

JSON = "application/json"
KEEPALIVE_S = 3.0


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer, whatever its status."""

    status: int
    body: bytes
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def problem(self) -> Problem | None:
        """The problem+json document of an error reply, if it is one."""
        return None if self.ok else decode(self.body, Problem)

    @property
    def key(self) -> str:
        """How the status mix counts this reply: `201`, `409 sold-out`, `503 overloaded`."""
        problem = self.problem()
        if problem is None or problem.slug in ("", "about:blank"):
            return str(self.status)
        return f"{self.status} {problem.slug}"


@dataclass(frozen=True, slots=True)
class Failure:
    """No HTTP answer: `timeout`, `connect-error` or `disconnected`."""

    kind: str
    detail: str

    @property
    def key(self) -> str:
        """How the status mix counts this failure."""
        return self.kind


Answer = Reply | Failure
"""What a call came back with: an HTTP reply or a transport failure."""


class TicketdClient:
    """Calls the ticketd contract over one `aiohttp.ClientSession` with at most `limit` sockets."""

    def __init__(self, base_url: str, tokens: Tokens, *, limit: int, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._limit = limit
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            # idle connections dropped before the server's keep-alive timeout (uvicorn's
            # 5 s) ends them: a request sent on one the server is just closing would fail
            # with no answer (a nemesis soak met it once in 1.9 million requests)
            connector=aiohttp.TCPConnector(
                limit=self._limit, limit_per_host=0, keepalive_timeout=KEEPALIVE_S
            ),
            timeout=aiohttp.ClientTimeout(total=self._timeout),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def create_route(self, route: RouteDef) -> Answer:
        """POST /v1/routes as admin."""
        return await self._call("POST", "/v1/routes", token=self.tokens.admin, body=encode(route))

    async def get_route(self, route_id: str) -> Answer:
        """GET /v1/routes/{route_id}."""
        return await self._call("GET", f"/v1/routes/{_seg(route_id)}")

    async def availability(self, route_id: str, origin: str, destination: str) -> Answer:
        """GET /v1/routes/{route_id}/availability?from=&to=."""
        query = f"from={quote(origin, safe='')}&to={quote(destination, safe='')}"
        return await self._call("GET", f"/v1/routes/{_seg(route_id)}/availability?{query}")

    async def book(self, route_id: str, user: str, request: BookingRequest, key: str) -> Answer:
        """POST /v1/routes/{route_id}/bookings as `user` with `Idempotency-Key: key`."""
        return await self._call(
            "POST",
            f"/v1/routes/{_seg(route_id)}/bookings",
            token=self.tokens.user(user),
            body=encode(request),
            headers={"Idempotency-Key": key},
        )

    async def confirm(self, booking_id: str, user: str) -> Answer:
        """POST /v1/bookings/{booking_id}/confirm as `user`."""
        path = f"/v1/bookings/{_seg(booking_id)}/confirm"
        return await self._call("POST", path, token=self.tokens.user(user))

    async def cancel(self, booking_id: str, user: str) -> Answer:
        """DELETE /v1/bookings/{booking_id} as `user`."""
        path = f"/v1/bookings/{_seg(booking_id)}"
        return await self._call("DELETE", path, token=self.tokens.user(user))

    async def route_bookings(self, route_id: str) -> Answer:
        """GET /v1/routes/{route_id}/bookings as admin: every booking, for the audit."""
        path = f"/v1/routes/{_seg(route_id)}/bookings"
        return await self._call("GET", path, token=self.tokens.admin)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        if self._session is None:
            raise RuntimeError("TicketdClient used outside `async with`")
        send = {"Accept": f"{JSON}, application/problem+json"}
        if token is not None:
            send["Authorization"] = f"Bearer {token}"
        if body is not None:
            send["Content-Type"] = JSON
        if headers:
            send.update(headers)
        try:
            async with self._session.request(
                method, self.base_url + path, data=body, headers=send
            ) as resp:
                data = await resp.read()
                return Reply(resp.status, data, _retry_after(resp.headers.get("Retry-After")))
        except TimeoutError as exc:
            return Failure("timeout", str(exc) or "no answer within the request timeout")
        except aiohttp.ClientConnectorError as exc:
            return Failure("connect-error", str(exc))
        except (aiohttp.ClientError, asyncio.IncompleteReadError) as exc:
            return Failure("disconnected", str(exc) or type(exc).__name__)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _retry_after(value: str | None) -> float | None:
    # Only the delay-seconds form: the server's 503 answers "at once" with a short delay.
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None

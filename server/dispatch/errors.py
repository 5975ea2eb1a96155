"""Why the front end could not have a route's actor answer: each error carries its data
and the problem `type` a client sees (its HTTP status is server/api/problems.py's)."""

from __future__ import annotations

from typing import Any, ClassVar


class DispatchError(Exception):
    """A request the front end could not take to a route's actor."""

    type: ClassVar[str] = "unavailable"

    def __init__(self, detail: str, **data: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.data = data


class NoSuchRoute(DispatchError):
    type = "not-found"

    def __init__(self, route_id: str) -> None:
        super().__init__(f"There is no route {route_id}.", route_id=route_id)


class RouteUnavailable(DispatchError):
    """The actor is restarting, moving or unreachable: retrying with the same key is safe."""

    type = "unavailable"

    def __init__(self, route_id: str) -> None:
        super().__init__(
            f"Route {route_id} is restarting; retry with the same Idempotency-Key.",
            route_id=route_id,
        )


class Overloaded(DispatchError):
    type = "overloaded"

    def __init__(self, route_id: str, waiting: int) -> None:
        super().__init__(f"Route {route_id} has {waiting} requests waiting; retry shortly.")

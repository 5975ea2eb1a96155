"""Errors that stop a loadgen run before it can drive load."""

from __future__ import annotations


class LoadgenError(Exception):
    """A run cannot proceed; the message says what is wrong and what to change."""


class ServerUnreachable(LoadgenError):
    """Nothing answers HTTP at the target URL."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach ticketd at {url}: {reason}")
        self.url = url
        self.reason = reason


class RouteSetupFailed(LoadgenError):
    """The server refused to create a route the scenario needs."""

    def __init__(self, route_id: str, status: int, problem: str) -> None:
        super().__init__(f"could not create route {route_id}: HTTP {status} {problem}".rstrip())
        self.route_id = route_id
        self.status = status

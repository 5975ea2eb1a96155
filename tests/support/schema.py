"""Schemathesis cases sent with the test's own token, without hiding a negative case."""

from __future__ import annotations

import schemathesis
from schemathesis.core.parameters import ParameterLocation


def auth_for(case: schemathesis.Case, auth: dict[str, str]) -> dict[str, str]:
    """The headers a case goes out with: a valid token, unless schemathesis made the headers
    wrong on purpose (a missing or broken Authorization), which the server must refuse."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return {}
    return auth


def empty_trip_refused(case: schemathesis.Case, base_url: str, headers: dict[str, str]) -> bool:
    """For a read of a trip from a station to itself (schema-valid, but no trip): check
    the documented 422 (or the 404 of an unknown route, which is looked at first) and say
    True; False for any other case, which the caller validates as usual."""
    query = case.query or {}
    same = query.get("from") is not None and query.get("from") == query.get("to")
    if case.method.upper() != "GET" or not same or not headers:
        return False
    response = case.call(base_url=base_url, headers=headers)
    assert response.status_code in (404, 422), response.text
    return True

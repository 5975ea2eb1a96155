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

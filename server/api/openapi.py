"""/openapi.json: the OpenAPI 3.1 document, made from the table of endpoints
(server/contract.py) and the msgspec types they name; nothing here lists a path."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import msgspec

from server import contract
from server.api import schemas
from server.api.endpoint import JSON, Endpoint, Reply
from server.api.problems import STATUS

REF = "#/components/schemas/{name}"
_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]


def _problem(*slugs: str) -> dict[str, Any]:
    return {
        "description": "Problem: " + ", ".join(slugs),
        "content": {
            "application/problem+json": {"schema": {"$ref": REF.format(name="ProblemOut")}}
        },
    }


def _reply(reply: Reply) -> dict[str, Any]:
    if reply.type is not None:
        schema: dict[str, Any] = {"$ref": REF.format(name=reply.type.__name__)}
        return {"description": reply.description, "content": {JSON: {"schema": schema}}}
    content = {m: {"schema": {"type": "object" if m == JSON else "string"}} for m in reply.media}
    return {"description": reply.description, "content": content}


def _responses(e: Endpoint) -> dict[str, Any]:
    out: dict[str, Any] = {str(status): _reply(r) for status, r in e.ok.items()}
    by_status: dict[int, list[str]] = {}
    for slug in e.problems:
        by_status.setdefault(STATUS[slug][0], []).append(slug)
    for status, group in sorted(by_status.items()):
        out[str(status)] = _problem(*group)
    return out


def _operation(e: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": e.summary}
    if e.description:
        op["description"] = e.description
    if e.auth:
        op["security"] = _AUTH
    if e.params:
        op["parameters"] = list(e.params)
    if e.body is not None:
        schema = {"$ref": REF.format(name=e.body.__name__)}
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    op["responses"] = _responses(e)
    return op


def render(endpoints: Sequence[Endpoint]) -> bytes:
    """The OpenAPI 3.1 JSON of `endpoints`."""
    paths: dict[str, dict[str, Any]] = {}
    types: dict[type, None] = {schemas.ProblemOut: None}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e)
        for t in (e.body, *(r.type for r in e.ok.values())):
            if t is not None:
                types[t] = None
    _, components = msgspec.json.schema_components(list(types), ref_template=REF)
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "ticketd",
            "version": "1.0.0",
            "description": "Train-ticket booking: routes, exact availability, holds, payment.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
    return msgspec.json.encode(doc)


@functools.cache
def document() -> bytes:
    """The whole contract as OpenAPI 3.1 JSON (built once)."""
    return render(contract.ENDPOINTS)

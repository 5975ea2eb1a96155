"""The HTTP contract (docs/architecture.md), one module per resource.

Endpoints: `routes` (/v1/routes: define, read, availability, pages, admin list),
`bookings` (book, read, pay, cancel, change, your own), `search` (/v1/search),
`system` (healthz, readyz, metrics, openapi.json; 404/405/500 as problems).

Plumbing: `schemas` (strict msgspec request types), `openapi` (the document, from
the same types), `auth` (bearer JWT), `problems` (problem+json), `query` (query
parameters), `common` (bodies, JSON answers, ids, the endpoint guard), `middleware`
(request ids and logs), `hot` (the booking POST as raw ASGI, ahead of Starlette's
stack), `services` (what endpoints reach through the app state).
"""

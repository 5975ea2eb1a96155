"""The front end's side of the route actors (docs/architecture.md, "The planes").

`gateway` is the endpoints' one entry: the routes this front end knows (`channel`: one
route as it sees it) and the parts below, one concept each: `connector` (Ray finds the
actor, `link` is the authenticated data-plane socket to it), `batches` (per-route
batching and admission, 503 with Retry-After when full), `reads` (availability and seat
maps), `refusals` (Redis marks of keys answered "sold out" from memory, one write per
loop turn), `holds` (overdue holds of sleeping routes), `readiness` (/readyz), and
`errors` (why a route's actor could not be reached, as data).
"""

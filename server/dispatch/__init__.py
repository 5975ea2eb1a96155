"""The front end's side of the route actors.

`gateway` batches each route's requests (no timer), admits or refuses them (503 with
Retry-After), answers sold-out from the snapshot, and resends to a successor after
a deactivation; `channel` is one route as this front end sees it; `link` is one
authenticated data-plane connection to one route actor (actors/plane/); `readiness`
is /readyz's Ray check, one in flight however many probes come; `refusals` marks
the keys of cached sold-out answers in Redis, one write per event-loop turn.
"""

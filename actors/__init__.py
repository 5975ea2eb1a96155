"""The route actors: one Ray actor per train-route-date, and everything it stands on.

- `actors.domain`: the seat model and the booking rules, pure (no Ray, Redis,
  Starlette or uvicorn import; tests/domain/test_boundaries.py keeps it so);
- `actors.storage`: Redis, the durable backstop (every key, the fenced journal,
  route definitions, users' booking lists, the embedded server and its supervisor);
- `actors.plane`: the data plane, the socket each actor serves its commands on;
- the actor shell, hosted by Ray: `actor` (RouteActor: what Ray calls), `core`
  (RouteCore: decide a batch, append it, answer), `writes` (batches decided while an
  append is in flight, and what a confirmation hands out), `recovery` (state back from
  snapshot + journal), `directory` (find or activate a route's actor), `placement`
  (which node), `zombie` (an old activation that finds itself fenced exits), `config`
  (what an actor is created with).
"""

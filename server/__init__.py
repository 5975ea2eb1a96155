"""The front end: the HTTP contract, served by Starlette, routed to the route actors.

- `server.api`: the endpoints by resource and the contract's plumbing (schemas,
  OpenAPI, JWT, problem+json);
- `server.dispatch`: the front end's side of the actors (batching gateway, per-route
  channel, data-plane link);
- `server.catalog`: reads that wake no actor (search and the timetable index);
- `server.boot`: the process's life (start-up checks, embedded Redis + local Ray,
  exit when the cluster is gone);
- `app` assembles endpoints and lifespan; `__main__` is the command line (`python -m
  server`, `python -m server token`); `settings`, `logs`, `metrics` and `flight` (one
  task per key however many wait) beside them.
"""

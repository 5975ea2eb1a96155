"""The pure domain: the seat model and the booking rules of one route.

Imports nothing from Ray, Redis, Starlette or uvicorn (a test enforces it), so it
reads and tests on its own:

- `route`: route definitions (stations, coaches, seats) and trips as segment masks;
- `inventory`: the seat map, per-seat segment bitmasks indexed by class and mask;
- `messages`: commands (requests) and events (journalled facts), as plain data;
- `state`: a route's state and `apply(state, event)`, the only way it changes;
- `decide`: `decide(state, command) -> events + answer`, and the batch loop;
- `views`: booking records and availability as the actor answers them;
- `errors`: domain errors, each with its data and a stable `type` slug.
"""

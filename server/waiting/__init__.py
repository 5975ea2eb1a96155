"""The waiting room in front of a sale (issue 22): who gets to book, in which order.

- `tokens`: the signed ticket (a caller's place) and admission (the right to book) a
  front end checks without any I/O, on every front end of the cluster;
- `order`: the queue's order: everyone who joined before the opening in a uniformly
  random order, everyone after in arrival order;
- `policy`: how far admission has reached (a fixed rate, or as fast as the routes sell,
  never more people admitted and not yet booked than seats left × a factor), and what
  a poll answers (state, people ahead, estimated wait, when to ask again);
- `sales`: a sale's definition and the states an operator may move it through;
- `registry`: the sales in Redis, each route in at most one sale that is not closed;
- `store`: the queue in Redis, shared by every front end and durable (joins coalesced
  per loop turn, the draw written once, one frontier however many front ends move it);
- `room`: a front end's side: the keeper that moves every sale on, and the memory polls
  and the booking endpoint's admission check are answered from.

The endpoints are in server/api/sales.py (joins and polls also take the raw ASGI way
in, server/api/hot.py); the console's queue and sales panel in server/console/static/
(queue.js, rooms.js); the loadgen `waiting-room` scenario in loadgen/waiting/. The
design: docs/architecture.md, "The waiting room".
"""

"""The waiting room in front of a sale (issue 22): who gets to book, in which order.

This package is built in steps. What is here is its core:
- `tokens`: the signed ticket (a caller's place) and admission (the right to book) a
  front end checks without any I/O, on every front end of the cluster;
- `order`: the queue's order: everyone who joined before the opening in a uniformly
  random order, everyone after in arrival order;
- `policy`: how far admission has reached (a fixed rate, or as fast as the routes sell,
  never more people admitted and not yet booked than seats left × a factor), and what
  a poll answers (state, people ahead, estimated wait, when to ask again);
- `sales`: a sale's definition (the types its endpoints will validate with) and the
  states an operator may move it through;
- `registry`: the sales in Redis, each route in at most one sale that is not closed
  (claimed all or none, freed when the sale closes);
- `store`: the queue in Redis, shared by every front end and durable (joins coalesced
  per loop turn, the draw written once, one frontier however many front ends move it).

Not yet built: the endpoints, the caches polls are answered
from, the booking endpoint's 403 `not-admitted`, the console and the loadgen scenario.
"""

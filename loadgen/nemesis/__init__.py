"""The nemesis: a flash sale under a seeded schedule of faults, audited over the whole run.

`python -m loadgen.nemesis` (or `make chaos`) brings up a local multi-process ticketd (an
embedded Redis under the same supervisor `make run` uses, a Ray cluster of a head and
worker nodes, a front end of several workers), drives loadgen's flash sale at it, and
meanwhile injects faults from a seeded random schedule (`schedule`): SIGKILL of the Redis
server, a route actor, a front-end worker or a whole Ray node; SIGSTOP/SIGCONT of Redis,
a front-end worker or a node. Then it checks the history (`verdict`): loadgen's audit
(nothing acknowledged lost, no seat-segment sold twice, nothing booked that nobody asked
for, no request applied twice), every request answered within its client timeout (201,
202, 409, or 503 with Retry-After: never silence), and every route serving again within
a bound per fault kind. The seed is printed and replays the schedule.
"""

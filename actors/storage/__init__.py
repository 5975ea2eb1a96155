"""Storage: Redis as the durable backstop, and the embedded Redis ticketd runs by default.

- `keys`: every Redis key ticketd uses, in one place;
- `journal`: the fenced, append-only journal and snapshots of a route;
- `resp`: the lean hiredis connection for the actor's one hot-path append;
- `topology`: one server or a Redis Cluster, and the clients for either;
- `slots`: lean connections to a cluster's primaries by hash slot (MOVED, ASK, WAITAOF);
- `projection`: on a cluster, the read models outside a route's slot, from its journal;
- `routes_store`: route definitions and their indexes (by date, by station);
- `formats`: what the actors store for readers, and its codecs, each defined once;
- `read_side`: what a front end reads of storage (users' booking lists, stored
  availability) and the one mark it writes;
- `persistence`: is an external Redis durable enough to acknowledge bookings?
- `redis_server`: the embedded Redis-compatible server (start, adopt, stop);
- `supervisor`: keeps the embedded Redis alive, restarting it with backoff;
- `valkey_cluster`: a local Valkey Cluster for tests and trying (`make cluster-redis`).
"""

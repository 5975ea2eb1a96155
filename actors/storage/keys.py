"""Every Redis key ticketd uses, in one place.

A route's own keys share the hash tag `{<route_id>}` so that a Redis Cluster
keeps them in one slot: the fenced-append script touches two of them at once.
"""

from __future__ import annotations

PREFIX = "ticketd"

# The catalog (route definitions, their indexes, the sales and the routes they claim)
# shares the hash tag `{catalog}`: creating a route or a sale is one script over several
# of its keys, which a Redis Cluster runs only within one slot. It is small and read
# through the front ends' caches, so one shard holds it. (Before the tag, these keys were
# `ticketd:routes…` and `ticketd:sales…`: `migrate_keys` renames them.)
CATALOG = f"{PREFIX}:{{catalog}}"

#: hash route_id -> route definition JSON
ROUTES = f"{CATALOG}:routes"

#: sorted set route_id -> earliest deadline (epoch s) of its live holds. Front ends poll
#: it so holds expire on time even when the route's actor is down or deactivated. On one
#: server the append script writes it with the route's journal; on a Redis Cluster it is
#: projected right after (actors/storage/projection.py) from `route_holds`.
HOLDS = f"{PREFIX}:holds"

#: hash route_id -> Ray node id (hex) its latest activation was placed on (actors/placement.py)
PLACEMENT = f"{PREFIX}:placement"


def journal(route_id: str) -> str:
    """Stream of event batches of a route (field `e`: msgpack list of events)."""
    return f"{PREFIX}:{{{route_id}}}:journal"


def snapshot(route_id: str) -> str:
    """Hash with the latest snapshot: `data`, `last_id` (journal entry covered), `epoch`."""
    return f"{PREFIX}:{{{route_id}}}:snapshot"


def route_holds(route_id: str) -> str:
    """On a Redis Cluster, the route's own entry of HOLDS (a sorted set of one member),
    written by the append script in the route's slot."""
    return f"{PREFIX}:{{{route_id}}}:holds"


def epoch(route_id: str) -> str:
    """Integer incremented by every activation of the route's actor (fencing token)."""
    return f"{PREFIX}:{{{route_id}}}:epoch"


#: how long a booking's Idempotency-Key is remembered for front ends (see idem_marker)
IDEM_MARKER_TTL = 7 * 86400


#: a booking journalled this long after its key was answered "sold out" from a front
#: end's cache may have been in flight at that moment (see idem_marker): above the front
#: ends' data-plane request timeout and queue wait
CLASH_WINDOW_SECONDS = 60

#: how long a key answered "sold out" from a cache stays marked (`c<time>`): the clash
#: window and a margin. Only that window needs the mark; after it a retry of the key is
#: decided afresh either way, and a rush of refusals keeps at most rate x this many keys.
CACHED_MARKER_TTL = 2 * CLASH_WINDOW_SECONDS


#: the keys named before their hash tags (catalog, users), as SCAN patterns: `retag`
UNTAGGED = (f"{PREFIX}:routes*", f"{PREFIX}:sales", f"{PREFIX}:sales:of-route",
            f"{PREFIX}:user:*")  # fmt: skip


def retag(untagged: str) -> str:
    """The name a key from before the hash tags has now (`ticketd:routes` →
    `ticketd:{catalog}:routes`, `ticketd:user:3:ann:records` → `ticketd:{user:3:ann}:records`)."""
    rest = untagged[len(PREFIX) + 1 :]
    if rest.startswith("user:"):
        name, _, kind = rest.rpartition(":")
        return f"{PREFIX}:{{{name}}}:{kind}"
    return f"{CATALOG}:{rest}"


def idem_marker(route_id: str, user: str, key: str) -> str:
    """Whether a booking key was journalled (`f`) or answered from a cache (`c<time>`).

    A front end may answer "sold out" from its availability snapshot only for a key no
    actor has journalled, since a retry of a booking that exists must get the first
    answer. The append script sets `f` for every booking it journals, in the same round
    trip; a front end answering from its cache sets `c<redis time>` if nothing is there.
    Had a front end done so for a booking still in flight (a client retrying before its
    first answer), the append script refuses the batch (KeyClash) and turns the marker
    into `f`: the booking is not journalled, so both answers agree, and the client's next
    retry is decided afresh.
    """
    return f"{PREFIX}:{{{route_id}}}:key:{len(user)}:{user}:{key}"


# ---- route indexes (written with the definition by routes_store.create) ------------------

#: sorted set of every route id, all scores 0: listing pages by ZRANGEBYLEX cost O(page)
ROUTE_IDS = f"{CATALOG}:routes:ids"

#: set when every definition in ROUTES is in the indexes below (a one-off backfill)
ROUTE_INDEX_DONE = f"{CATALOG}:routes:indexed:v1"


def _name(value: str) -> str:
    # length-prefixed: a station name may hold any character, ':' included
    return f"{len(value)}:{value}"


def routes_of_date(date: str) -> str:
    """Sorted set (scores 0) of the route ids running on a date (YYYY-MM-DD)."""
    return f"{CATALOG}:routes:date:{date}"


def routes_of_station(station: str) -> str:
    """Sorted set (scores 0) of the route ids stopping at a station, every date."""
    return f"{CATALOG}:routes:station:{_name(station)}"


def routes_of_date_station(date: str, station: str) -> str:
    """Sorted set (scores 0) of the route ids of a date stopping at a station."""
    return f"{CATALOG}:routes:date:{date}:station:{_name(station)}"


def availability(route_id: str) -> str:
    """The route's latest durable availability (msgpack `[version, {class: [n, ...]}]`).

    Written by the route's actor in the same script as each journal append, and when it
    activates, so a front end can answer searches without waking a cold actor.
    """
    return f"{PREFIX}:{{{route_id}}}:availability"


# ---- a user's own bookings (written with the journal append, or projected from it) --------
# A user's two keys share the hash tag `{user:<name>}`: a page of them is one script.


def user_bookings(user: str) -> str:
    """Sorted set (scores 0) of `<created_at %017.6f>:<booking_id>`: newest is lex-last."""
    return f"{PREFIX}:{{user:{_name(user)}}}:bookings"


def user_records(user: str) -> str:
    """Hash booking_id -> the booking's latest record (msgpack `views.Record`)."""
    return f"{PREFIX}:{{user:{_name(user)}}}:records"


# ---- sales and their waiting rooms (server/waiting/) ----------------------------------------

#: hash sale_id -> the sale's definition (JSON: routes, opens_at, admit_per_second)
SALES = f"{CATALOG}:sales"
#: hash route_id -> the sale (not closed) it belongs to: a route is in one sale at a time
SALE_OF_ROUTE = f"{CATALOG}:sales:of-route"

# A sale's keys share the hash tag `{sale:<id>}`: its scripts touch several at once.


def sale(sale_id: str) -> str:
    """Hash: `opened` (0/1), `frontier`, `carry`, `last_advance`, `next_place`, `joins`,
    `state`, `rate` (admissions per second)."""
    return f"{PREFIX}:{{sale:{sale_id}}}"


def sale_joined(sale_id: str) -> str:
    """Hash user -> the order they first joined in (1, 2, …): one entry per user."""
    return f"{PREFIX}:{{sale:{sale_id}}}:joined"


def sale_places(sale_id: str) -> str:
    """Hash user -> their place in the queue (1-based), once the queue is drawn."""
    return f"{PREFIX}:{{sale:{sale_id}}}:places"


def sale_prequeue(sale_id: str) -> str:
    """List of the users who joined before the opening, in join order (drawn, then gone)."""
    return f"{PREFIX}:{{sale:{sale_id}}}:prequeue"


def sale_latecomers(sale_id: str) -> str:
    """List of the users who joined after the opening time but before the draw, in join
    order: placed right after the drawn pre-queue, in that order (then gone)."""
    return f"{PREFIX}:{{sale:{sale_id}}}:latecomers"


def sale_booked(sale_id: str) -> str:
    """Set of the users who booked with an admission to the sale (the automatic policy
    admits more as they book)."""
    return f"{PREFIX}:{{sale:{sale_id}}}:booked"

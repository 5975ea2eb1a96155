"""The JSON shapes of `/v1/sales` (docs/architecture.md, "The waiting room") loadgen reads
and sends; replies decoded leniently, as in loadgen/wire.py."""

from __future__ import annotations

import msgspec

#: a queue answer's states (the contract's `state` of POST/GET /v1/sales/{id}/queue)
NOT_OPEN, WAITING, ADMITTED, SOLD_OUT, CLOSED = (
    "not-open", "waiting", "admitted", "sold-out", "closed"
)  # fmt: skip
#: the answers after which an honest user stops polling
FINAL_STATES = frozenset({ADMITTED, SOLD_OUT, CLOSED})


class SaleRequest(msgspec.Struct, frozen=True):
    """POST /v1/sales; `admit_per_second` is sent as null for automatic admission."""

    routes: tuple[str, ...]
    opens_at: str
    admit_per_second: float | None


class SalePatch(msgspec.Struct, frozen=True, omit_defaults=True):
    state: str | None = None


class Sale(msgspec.Struct, frozen=True, kw_only=True):
    sale_id: str
    routes: tuple[str, ...]
    opens_at: str
    state: str
    admit_per_second: float | None = None
    queued: int = 0
    admitted: int = 0
    joined: int = 0


class QueueAnswer(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    place: int | None = None
    ahead: int | None = None
    eta_seconds: float | None = None
    poll_after_seconds: float = 1.0
    admission: str | None = None
    ticket: str | None = None
    #: once sold out, `admission` admits waitlisted bookings alone: no admission to book
    waitlist: bool = False

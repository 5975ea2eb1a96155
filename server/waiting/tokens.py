"""Signed tickets and admissions: checked by any front end without any I/O.

A *ticket* says "this user holds this place in this sale's queue"; an *admission* says
"this user may book in this sale until this time". Both are `<payload>.<signature>` in
URL-safe base64, the signature an HMAC-SHA256 with a key derived from the cluster's
secret (TICKETD_CLUSTER_SECRET, the same on every node, kept in DATA_DIR), so they
survive a front-end restart and work on every front end. A token is bound to its kind,
sale and user: one made for another sale, another user or another kind is refused
like a forged one. Once a sale sold out, those still holding a place are offered its
waitlist: an admission marked `waitlist_only`, good for waitlisted bookings alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

import msgspec

#: a ticket, an admission, and the admission a sold-out sale gives to its waitlist
_KIND_TICKET, _KIND_ADMISSION, _KIND_WAITLIST = "t", "a", "w"


class BadToken(Exception):
    """Not a valid ticket or admission for this caller and sale; the message says why, in
    words a client can act on ("it has expired")."""


class _Claims(msgspec.Struct, array_like=True, frozen=True):
    kind: str
    sale_id: str
    user: str
    #: the ticket's place (1-based; 0 while in the pre-queue); 0 in an admission
    place: int
    #: unix time after which it is refused
    expires_at: float


@dataclass(frozen=True, slots=True)
class Ticket:
    sale_id: str
    user: str
    place: int
    expires_at: float


@dataclass(frozen=True, slots=True)
class Admission:
    sale_id: str
    user: str
    expires_at: float
    #: given once the sale sold out: it admits waitlisted bookings only
    waitlist_only: bool = False


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Claims).decode


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks tickets and admissions with one key."""

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the signing secret must be at least 32 bytes")
        # a key of its own: the cluster secret also keys the data plane's handshake
        key = hmac.new(secret.encode(), b"ticketd waiting room v1", hashlib.sha256).digest()
        # keyed once; each token's MAC starts from a copy (a poll or join makes one)
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, payload: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(payload)
        return mac.digest()

    def _sign(self, claims: _Claims) -> str:
        payload = _encode(claims)
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def _open(self, token: str, kinds: str, sale_id: str, user: str, now: float) -> _Claims:
        try:
            head, _, tail = token.partition(".")
            payload, mac = _unb64(head), _unb64(tail)
        except (ValueError, UnicodeEncodeError):
            raise BadToken("it is not one of ours") from None
        if not hmac.compare_digest(self._mac(payload), mac):
            raise BadToken("its signature does not match")
        try:
            claims = _decode(payload)
        except msgspec.DecodeError:
            raise BadToken("it is not one of ours") from None
        if claims.kind not in kinds or claims.sale_id != sale_id or claims.user != user:
            raise BadToken("it was made for another sale or user")
        if now >= claims.expires_at:
            raise BadToken("it has expired")
        return claims

    def ticket(self, t: Ticket) -> str:
        return self._sign(_Claims(_KIND_TICKET, t.sale_id, t.user, t.place, t.expires_at))

    def admission(self, a: Admission) -> str:
        kind = _KIND_WAITLIST if a.waitlist_only else _KIND_ADMISSION
        return self._sign(_Claims(kind, a.sale_id, a.user, 0, a.expires_at))

    def check_ticket(self, token: str, sale_id: str, user: str, now: float) -> Ticket:
        """The ticket, if `token` is a valid one of `user` in `sale_id`; BadToken if not."""
        c = self._open(token, _KIND_TICKET, sale_id, user, now)
        return Ticket(c.sale_id, c.user, c.place, c.expires_at)

    def check_admission(self, token: str, sale_id: str, user: str, now: float) -> Admission:
        """The admission, if `token` is a valid one of `user` in `sale_id`; BadToken if
        not (forged, someone else's, another sale's, or expired)."""
        c = self._open(token, _KIND_ADMISSION + _KIND_WAITLIST, sale_id, user, now)
        return Admission(c.sale_id, c.user, c.expires_at, c.kind == _KIND_WAITLIST)

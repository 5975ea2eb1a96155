"""The data plane's wire protocol: an authenticated, framed, multiplexed channel.

Ray carries the control plane (naming, activation, placement, restarts); a Ray
actor call costs ~1.5 ms of CPU per round trip on a 2-core machine, a plain
socket round trip ~0.08 ms. So commands travel over a socket the route actor
serves itself, one long-lived connection per front end and actor.

The connection starts with a mutual HMAC-SHA256 challenge on a cluster-wide
secret, before a single frame is read:

    server -> client   MAGIC (6 bytes) + server nonce (16)
    client -> server   client nonce (16) + HMAC(secret, "C" + server nonce + client nonce)
    server -> client   HMAC(secret, "S" + client nonce + server nonce)

A wrong proof cuts the connection; nothing else it sent is looked at. The
client checks the server's proof too, so a stranger that took over a dead
actor's port cannot answer in its name. After that both sides exchange frames:

    length (u32, of what follows) | request id (u32) | op or status (u8) | body

Requests carry an op (`OP_SUBMIT`: a msgpack list of commands; `OP_AVAILABILITY`:
no body); answers carry the request's id and a status (`OK`: a msgpack Reply;
`ERROR`: a UTF-8 sentence; `GONE`: not run, this activation is ending).
Several requests may be in flight; answers come in the order the actor
finishes them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

MAGIC = b"TKDP1\n"
NONCE = 16
MAC = 32
#: what the server sends first, and what it expects back
HELLO_SIZE = len(MAGIC) + NONCE
PROOF_SIZE = NONCE + MAC

OP_SUBMIT = 1
OP_AVAILABILITY = 2
#: the seat map (per seat its segment bitmask) and booking counts, for the web console;
#: answered as a msgpack SeatMap, never on the booking path
OP_SEATS = 3

OK = 0
ERROR = 1
#: this activation is ending (idle deactivation) and did not run the request: ask Ray
#: for the route's actor again and resend
GONE = 2

#: a frame larger than this is a protocol violation (the biggest real one, an admin list of
#: a sold-out 5,000-seat route, is well under it)
MAX_FRAME = 64 * 1024 * 1024
#: how long an unauthenticated connection may stay open
HANDSHAKE_SECONDS = 5.0

_HEAD = struct.Struct(">IIB")
_LENGTH = struct.Struct(">I")
_ID_OP = struct.Struct(">IB")


class PlaneError(Exception):
    """Base of the data plane's failures."""


class AuthFailed(PlaneError):
    """The peer does not know the cluster secret (or is not a ticketd peer at all)."""


class LinkLost(PlaneError):
    """The connection ended (or stalled) with the request in flight: its fate is unknown."""


class RemoteError(PlaneError):
    """The actor could not run the request; the text says why."""


class Gone(PlaneError):
    """The activation is ending and did not run the request: resend to its successor."""


def nonce() -> bytes:
    """A fresh random challenge."""
    return os.urandom(NONCE)


def client_proof(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    """What the client sends to show it knows the secret."""
    return hmac.new(secret, b"C" + server_nonce + client_nonce, hashlib.sha256).digest()


def server_proof(secret: bytes, server_nonce: bytes, client_nonce: bytes) -> bytes:
    """What the server sends back to show it knows the secret too."""
    return hmac.new(secret, b"S" + client_nonce + server_nonce, hashlib.sha256).digest()


def verify(expected: bytes, given: bytes) -> bool:
    """Constant-time comparison of two proofs."""
    return hmac.compare_digest(expected, given)


def frame(req_id: int, code: int, body: bytes) -> bytes:
    """One frame: header and body."""
    return _HEAD.pack(len(body) + 5, req_id, code) + body


def split_frames(buf: bytearray) -> list[tuple[int, int, bytes]]:
    """Take every complete frame off the front of buf: (request id, op/status, body).

    Raises PlaneError on a frame over MAX_FRAME (the caller drops the connection).
    """
    out: list[tuple[int, int, bytes]] = []
    at, size = 0, len(buf)
    while size - at >= 4:
        (length,) = _LENGTH.unpack_from(buf, at)
        if length < 5 or length > MAX_FRAME:
            raise PlaneError(f"bad frame length {length}")
        end = at + 4 + length
        if end > size:
            break
        req_id, code = _ID_OP.unpack_from(buf, at + 4)
        out.append((req_id, code, bytes(buf[at + 9 : end])))
        at = end
    if at:
        del buf[:at]
    return out


def secret_bytes(secret: str) -> bytes:
    """The cluster secret as the HMAC key; refuses an unset or short one."""
    raw = secret.encode()
    if len(raw) < 32:
        raise AuthFailed(
            "The data plane needs a cluster secret of at least 32 bytes "
            "(TICKETD_CLUSTER_SECRET, or the one generated into TICKETD_DATA_DIR)."
        )
    return raw

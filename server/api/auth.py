"""Bearer-JWT authentication (HS256) with a short cache of verified tokens."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import jwt
from jwt.algorithms import HMACAlgorithm

from server.api.problems import Problem

#: verified tokens are trusted this long before being checked again (seconds)
CACHE_SECONDS = 30.0
_CACHE_MAX = 50_000
#: when the cache is full, the oldest quarter of it goes (never every token at once)
_CACHE_EVICT = _CACHE_MAX // 4


class _HS256(HMACAlgorithm):
    """PyJWT's HS256, its key prepared once per key instead of for every token.

    Preparing an HMAC key, PyJWT makes sure it is not an asymmetric key or certificate
    (its guard against algorithm confusion: it tries to parse the key as PEM, DER, a
    certificate and a JWK). That costs more than the signature itself, and ticketd
    verifies every token with its one secret; a new token per request (a crowd joining a
    queue) paid it every time. The checks still run, once per distinct key.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)  # raises for a key that is no HMAC secret
            if len(self._prepared) < 8:  # a few secrets (tests, a rotation), never many
                self._prepared[key] = prepared
        return prepared


# PyJWT's public extension point (jwt.register_algorithm): jwt.encode/decode use it
jwt.unregister_algorithm("HS256")
jwt.register_algorithm("HS256", _HS256())


@dataclass(frozen=True, slots=True)
class User:
    id: str
    admin: bool


class Authenticator:
    """Verifies `Authorization: Bearer <JWT>` headers; `sub` is the user id."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        # token -> (user, trusted until): signature checks cost ~20 µs, a flash sale
        # repeats the same tokens thousands of times a second
        self._cache: dict[str, tuple[User, float]] = {}

    def user(self, header: str | None) -> User:
        """The caller, or Problem 401 with what is wrong with the credentials."""
        if not header:
            raise Problem("unauthorized", "Send 'Authorization: Bearer <token>'.")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem("unauthorized", "Use the Bearer scheme: 'Authorization: Bearer <token>'.")
        token = token.strip()
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub"]},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise Problem("unauthorized", "The token has expired; get a new one.") from None
        except jwt.InvalidTokenError as exc:
            raise Problem("unauthorized", f"The token is not valid: {exc}.") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not 1 <= len(sub) <= 128:
            raise Problem("unauthorized", "The token's 'sub' claim must be a user id string.")
        user = User(sub, claims.get("role") == "admin")
        until = now + CACHE_SECONDS
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            until = min(until, now + (exp - time.time()))
        cache = self._cache
        cache.pop(token, None)  # one checked again (expired) counts as newly verified
        if len(cache) >= _CACHE_MAX:
            # the oldest verified go first (a dict keeps insertion order): a crowd's new
            # tokens (joins) must not make every cached poller's token be checked again
            for old in list(itertools.islice(cache, _CACHE_EVICT)):
                del cache[old]
        cache[token] = (user, until)
        return user

    def admin(self, header: str | None) -> User:
        """The caller if an admin, else 401/403."""
        user = self.user(header)
        if not user.admin:
            raise Problem("forbidden", "This needs an admin token (claim role: admin).")
        return user


def mint(secret: str, user: str, admin: bool = False, ttl: float = 86400.0) -> str:
    """A signed token for `user` (the `token` subcommand, tests and loadgen use this)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user, "iat": now, "exp": now + int(ttl)}
    if admin:
        claims["role"] = "admin"
    return jwt.encode(claims, secret, algorithm="HS256")

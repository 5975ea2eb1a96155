"""JWTs for the users loadgen plays and for the admin that sets up and audits routes."""

from __future__ import annotations

import time

import jwt

TOKEN_LIFETIME_S = 3600


class Tokens:
    """Mints HS256 bearer tokens with the server's secret, one per user, cached for the run."""

    def __init__(self, secret: str, *, now: float | None = None) -> None:
        self._secret = secret
        self._exp = int(now if now is not None else time.time()) + TOKEN_LIFETIME_S
        self._cache: dict[str, str] = {}
        self.admin = self._mint({"sub": "loadgen-admin", "role": "admin", "exp": self._exp})

    def user(self, user_id: str) -> str:
        """The bearer token of `user_id` (no role claim: an ordinary customer)."""
        token = self._cache.get(user_id)
        if token is None:
            token = self._cache[user_id] = self._mint({"sub": user_id, "exp": self._exp})
        return token

    def _mint(self, claims: dict[str, object]) -> str:
        return jwt.encode(claims, self._secret, algorithm="HS256")

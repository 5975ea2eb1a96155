"""HS256 keys are prepared once per key (server/api/auth.py): tokens still verify, a
wrong secret is still refused, and PyJWT's guard against an asymmetric key used as an
HMAC secret still runs, once for each key."""

from __future__ import annotations

import jwt
import pytest

from server.api import auth as auth_module
from server.api.auth import Authenticator, User, mint
from server.api.problems import Problem

SECRET = "auth-keys-test-secret-0123456789abcdef"
PEM = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"


def test_many_tokens_verify_with_one_prepared_key() -> None:
    auth = Authenticator(SECRET)
    hs256 = jwt.api_jws._jws_global_obj._algorithms["HS256"]  # what jwt.decode uses
    for n in range(50):
        assert auth.user(f"Bearer {mint(SECRET, f'u{n}')}") == User(f"u{n}", False)
    assert list(hs256._prepared).count(SECRET) == 1


def test_a_token_signed_with_another_secret_is_refused() -> None:
    other = mint("another-secret-0123456789abcdef-012345", "mallory")
    with pytest.raises(Problem, match="not valid"):
        Authenticator(SECRET).user(f"Bearer {other}")


def test_an_asymmetric_key_is_still_refused_as_an_hmac_secret() -> None:
    for _ in range(2):  # not remembered as good after the first refusal
        with pytest.raises(jwt.InvalidKeyError):
            jwt.encode({"sub": "x"}, PEM, algorithm="HS256")


def test_a_full_cache_forgets_its_oldest_tokens_not_every_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crowd of new tokens (joins) filling the cache must not make every cached caller
    (pollers) be verified again at once: only the oldest quarter goes."""
    monkeypatch.setattr(auth_module, "_CACHE_MAX", 8)
    monkeypatch.setattr(auth_module, "_CACHE_EVICT", 2)
    checked: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> dict[str, object]:
        checked.append(token)
        return decode(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth_module.jwt, "decode", counting)
    auth = Authenticator(SECRET)
    tokens = [mint(SECRET, f"u{n}") for n in range(9)]
    for t in tokens:  # the ninth finds the cache full: the two oldest go
        auth.user(f"Bearer {t}")
    assert len(checked) == 9
    for t in tokens[2:]:  # still cached: no signature checked again
        auth.user(f"Bearer {t}")
    assert len(checked) == 9
    auth.user(f"Bearer {tokens[0]}")  # forgotten: verified again
    assert checked[9:] == [tokens[0]]

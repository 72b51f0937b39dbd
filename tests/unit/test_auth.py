"""The token verifier, with RSA keys made here: what passes, and every way a token fails."""
from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from chalicelib.platform.auth import (
    Caller,
    JwksCache,
    KeysUnavailable,
    TokenVerifier,
    Unauthorized,
    bearer_token,
)
from tests.clock import Clock

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TEST"
CLIENT = "app-client-1"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY, OTHER_KEY = new_key(), new_key()


def jwk(key, kid: str) -> dict:
    entry = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**entry, "kid": kid, "alg": "RS256", "use": "sig"}


def claims(**changes) -> dict:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "user-1", "client_id": CLIENT, "token_use": "access",
            "username": "alice", "exp": now + 600, "iat": now, "auth_time": now}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def token(key=KEY, kid="k1", **changes) -> str:
    return jwt.encode(claims(**changes), key, algorithm="RS256", headers={"kid": kid})


class FakeJwks:
    """What the pool's JWKS URL serves, counting fetches."""

    def __init__(self, *entries):
        self.document = {"keys": list(entries)}
        self.fetches = 0
        self.fail = False

    def __call__(self, url):
        self.fetches += 1
        if self.fail:
            raise OSError("connection refused")
        return self.document


@pytest.fixture
def jwks():
    return FakeJwks(jwk(KEY, "k1"))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def verifier(jwks, clock):
    return TokenVerifier(ISSUER, CLIENT, JwksCache("https://jwks", fetch=jwks, clock=clock))


def test_a_valid_access_token_names_its_caller(verifier):
    assert verifier.verify(token()) == Caller(sub="user-1", username="alice")


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("bad", [
    pytest.param(lambda: token(exp=int(time.time()) - 120), id="expired"),
    pytest.param(lambda: token(nbf=int(time.time()) + 600), id="not-yet-valid"),
    pytest.param(lambda: token(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OTHER"), id="wrong-issuer"),
    pytest.param(lambda: token(client_id="another-client"), id="wrong-client"),
    pytest.param(lambda: token(token_use="id", client_id=None, aud=CLIENT), id="id-token"),
    pytest.param(lambda: token(sub=None), id="no-subject"),
    pytest.param(lambda: token(exp=None), id="no-expiry"),
    pytest.param(lambda: token(key=OTHER_KEY), id="signed-by-another-key"),
    pytest.param(lambda: token(kid="unknown"), id="unknown-kid"),
    pytest.param(lambda: b64({"alg": "none", "kid": "k1"}) + "." + b64(claims()) + ".", id="alg-none"),
    pytest.param(lambda: _hs256_with_public_key(), id="hs256-with-public-key"),
    pytest.param(lambda: _tampered(), id="tampered-payload"),
    pytest.param(lambda: "not.a.jwt", id="garbage"),
    pytest.param(lambda: "", id="empty"),
    pytest.param(lambda: "a" * 10000, id="oversized"),
])
def test_every_bad_token_is_unauthorized(verifier, bad):
    with pytest.raises(Unauthorized):
        verifier.verify(bad())


def _hs256_with_public_key() -> str:
    """The classic confusion attack: HMAC "signed" with the RSA public key as the secret."""
    import hashlib
    import hmac

    public_pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{b64(claims())}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _tampered() -> str:
    header, _, signature = token().split(".")
    return f"{header}.{b64(claims(sub='admin'))}.{signature}"


def test_a_small_clock_skew_is_tolerated(verifier):
    assert verifier.verify(token(exp=int(time.time()) - 5)).sub == "user-1"


def test_keys_are_fetched_once_and_cached(verifier, jwks):
    for _ in range(5):
        verifier.verify(token())
    assert jwks.fetches == 1


def test_an_unknown_kid_refetches_the_keys(verifier, jwks, clock):
    verifier.verify(token())
    jwks.document["keys"].append(jwk(OTHER_KEY, "k2"))  # the pool rotated its keys
    clock.now += 61
    assert verifier.verify(token(key=OTHER_KEY, kid="k2")).sub == "user-1"
    assert jwks.fetches == 2


def test_made_up_kids_cannot_turn_every_request_into_a_fetch(verifier, jwks, clock):
    verifier.verify(token())
    clock.now += 61
    for n in range(20):
        with pytest.raises(Unauthorized):
            verifier.verify(token(kid=f"made-up-{n}"))
    assert jwks.fetches == 2  # one refetch for the first unknown kid, then the interval holds
    jwks.document["keys"].append(jwk(OTHER_KEY, "k2"))
    clock.now += 61
    assert verifier.verify(token(key=OTHER_KEY, kid="k2")).sub == "user-1"
    assert jwks.fetches == 3


def test_unreachable_keys_are_not_a_verdict_on_the_token(jwks, clock):
    jwks.fail = True
    verifier = TokenVerifier(ISSUER, CLIENT, JwksCache("https://jwks", fetch=jwks, clock=clock))
    with pytest.raises(KeysUnavailable):
        verifier.verify(token())


def test_keys_already_held_survive_a_failed_refresh(verifier, jwks, clock):
    verifier.verify(token())
    jwks.fail = True
    clock.now += 120
    with pytest.raises(KeysUnavailable):  # perhaps a key the pool has just added: not judged
        verifier.verify(token(kid="unknown"))
    assert verifier.verify(token()).sub == "user-1"


def test_a_failed_fetch_does_not_count_as_a_fetch(jwks, clock):
    """A valid token during and after an outage of the keys: 503 until they can be
    fetched, then accepted at once -- never a 401 because the cache thinks it is fresh."""
    jwks.fail = True
    verifier = TokenVerifier(ISSUER, CLIENT, JwksCache("https://jwks", fetch=jwks, clock=clock))
    with pytest.raises(KeysUnavailable) as first:
        verifier.verify(token())
    assert first.value.retry_after == 5
    clock.now += 2
    with pytest.raises(KeysUnavailable) as second:  # within the backoff: no fetch, still no verdict
        verifier.verify(token())
    assert second.value.retry_after == 3 and jwks.fetches == 1
    jwks.fail = False
    clock.now += 3
    assert verifier.verify(token()).sub == "user-1"
    assert jwks.fetches == 2


@pytest.mark.parametrize("document", [{}, {"keys": []}, {"keys": "x"}, {"keys": [{"kty": "EC", "kid": "e"}]}, []])
def test_a_document_without_usable_keys_is_a_failed_fetch(jwks, clock, document):
    jwks.document = document
    verifier = TokenVerifier(ISSUER, CLIENT, JwksCache("https://jwks", fetch=jwks, clock=clock))
    for _ in range(2):
        with pytest.raises(KeysUnavailable):
            verifier.verify(token())
    assert jwks.fetches == 1


def test_made_up_kids_during_an_outage_fetch_once_per_backoff(verifier, jwks, clock):
    verifier.verify(token())
    jwks.fail = True
    clock.now += 61
    for n in range(20):
        with pytest.raises(KeysUnavailable):
            verifier.verify(token(kid=f"made-up-{n}"))
        clock.now += 0.2  # 4 s in all: inside one backoff
    assert jwks.fetches == 2
    assert verifier.verify(token()).sub == "user-1"  # the held key still works
    clock.now += 1.1
    with pytest.raises(KeysUnavailable):
        verifier.verify(token(kid="made-up-again"))
    assert jwks.fetches == 3


def test_no_app_client_configured_accepts_nothing(jwks, clock):
    verifier = TokenVerifier(ISSUER, "", JwksCache("https://jwks", fetch=jwks, clock=clock))
    with pytest.raises(Unauthorized):
        verifier.verify(token())


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc", "bearerabc"])
def test_only_bearer_credentials_are_read(header):
    with pytest.raises(Unauthorized):
        bearer_token(header)


def test_bearer_scheme_is_case_insensitive():
    assert bearer_token("bearer abc.def.ghi") == "abc.def.ghi"

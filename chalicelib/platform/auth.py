"""Who is calling: Cognito access tokens verified by our own code, the same everywhere.

API Gateway's Cognito authorizer does not run under `chalice local` or the test Client,
and its 401 has API Gateway's body, not ours. So every route that needs a caller verifies
the bearer token here: RS256 signature against the user pool's JWKS (fetched once, cached,
refetched on an unknown `kid` at most once a minute), `iss`, the app client, `token_use`,
`exp`/`nbf` with a small leeway. While the keys cannot be fetched, no token is judged: the
caller is told to come back (KeysUnavailable, 503), never that its token is bad.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jwt
import requests
from jwt import PyJWK

LEEWAY_SECONDS = 30
JWKS_REFRESH_INTERVAL = 60.0  # after a fetch: an unknown kid refetches at most this often
JWKS_RETRY_AFTER_FAILURE = 5.0  # after a failed fetch: the next try (503 meanwhile)
JWKS_TIMEOUT = 3.0
MAX_TOKEN_LENGTH = 8192

Fetch = Callable[[str], Mapping[str, Any]]


class Unauthorized(Exception):
    """No valid bearer token. The reason is for logs only, never for the caller."""


class KeysUnavailable(Exception):
    """The user pool's keys could not be fetched: the token cannot be judged either way.
    `retry_after`: seconds until the keys are fetched again."""

    def __init__(self, reason: str, retry_after: int):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    sub: str
    username: str


def fetch_json(url: str) -> Mapping[str, Any]:
    response = requests.get(url, timeout=JWKS_TIMEOUT, allow_redirects=False)
    response.raise_for_status()
    return response.json()


class JwksCache:
    """The pool's signing keys by `kid`; an unknown kid refetches, rate-limited so that
    tokens with made-up kids cannot turn every request into a fetch.

    Only a fetch that brought keys counts as one: after a failed fetch (network, HTTP,
    JSON, no usable key) an unknown kid is not judged, it raises KeysUnavailable, and the
    fetch is tried again after JWKS_RETRY_AFTER_FAILURE seconds, not before. Keys already
    held keep working throughout.
    """

    def __init__(self, url: str, fetch: Fetch = fetch_json, clock: Callable[[], float] = time.monotonic,
                 refresh_interval: float = JWKS_REFRESH_INTERVAL,
                 retry_after_failure: float = JWKS_RETRY_AFTER_FAILURE):
        self._url, self._fetch, self._clock = url, fetch, clock
        self._interval, self._backoff = refresh_interval, retry_after_failure
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # the last fetch that brought keys
        self._failed_at: float | None = None  # the last fetch, if it failed
        self._failure = ""
        self._lock = threading.Lock()

    def key(self, kid: str) -> PyJWK | None:
        """The key named `kid`; None when a recent fetch showed the pool has no such key;
        KeysUnavailable when the keys cannot be fetched now."""
        with self._lock:
            if kid in self._keys:
                return self._keys[kid]
            now = self._clock()
            if self._failed_at is not None:
                wait = self._failed_at + self._backoff - now
                if wait > 0:
                    raise KeysUnavailable(f"{self._failure} (next try in {wait:.1f} s)", math.ceil(wait))
            elif self._fetched_at is not None and now - self._fetched_at < self._interval:
                return None
            self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        try:
            keys = _rsa_keys(self._fetch(self._url))
            if not keys:
                raise ValueError("no RSA signing key in the document")
        except Exception as exc:  # network, HTTP, JSON, no key: nothing new to verify against
            self._failed_at, self._failure = now, f"cannot fetch {self._url}: {exc}"
            raise KeysUnavailable(self._failure, math.ceil(self._backoff)) from exc
        self._keys, self._fetched_at, self._failed_at = keys, now, None


def _rsa_keys(document: Any) -> dict[str, PyJWK]:
    entries = document.get("keys") if isinstance(document, Mapping) else None
    keys: dict[str, PyJWK] = {}
    for entry in entries if isinstance(entries, list) else []:
        try:
            if entry.get("kty") == "RSA" and entry.get("kid"):
                keys[entry["kid"]] = PyJWK(entry, algorithm="RS256")
        except (jwt.PyJWTError, AttributeError, TypeError, ValueError):
            continue
    return keys


class TokenVerifier:
    def __init__(self, issuer: str, client_id: str, keys: JwksCache):
        self.issuer, self.client_id, self._keys = issuer, client_id, keys

    def verify(self, token: str) -> Caller:
        """The caller a Cognito access token names, or Unauthorized."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not self.client_id:
            raise Unauthorized("missing, oversized, or no app client configured")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"malformed: {exc}") from None
        if header.get("alg") != "RS256":
            raise Unauthorized(f"algorithm {header.get('alg')!r} is not RS256")
        kid = header.get("kid")
        key = self._keys.key(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthorized(f"unknown key id {kid!r}")
        try:
            claims = jwt.decode(
                token, key, algorithms=["RS256"], issuer=self.issuer, leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "sub", "token_use"], "verify_aud": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"rejected: {exc}") from None
        if claims.get("token_use") != "access":
            raise Unauthorized("not an access token")
        if claims.get("client_id") != self.client_id:
            raise Unauthorized("issued to another app client")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("no subject")
        return Caller(sub=sub, username=str(claims.get("username") or sub))


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("no Authorization header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("not a Bearer credential")
    return token.strip()

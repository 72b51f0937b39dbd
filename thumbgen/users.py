"""Users of a Cognito user pool (the local stack's embedded one, or a stage's): create one
with a permanent password, and sign in with USER_PASSWORD_AUTH as every client does."""
from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt


def local_password(pool_id: str, username: str) -> str:
    """The password of a user of the local pool, derived from the pool (new on every
    `make run`) and the name, so `thumbgen token` can sign in as any user it made. Anyone
    on this machine can reach the embedded AWS's admin calls anyway: there is nothing
    more to protect locally."""
    digest = hashlib.sha256(f"{pool_id}/{username}".encode()).hexdigest()[:20]
    return f"Tg-{digest}-9a"


def ensure_user(cognito: Any, pool_id: str, username: str, password: str) -> bool:
    """Create the user if missing (True when created) and set this permanent password."""
    created = False
    try:
        cognito.admin_get_user(UserPoolId=pool_id, Username=username)
    except cognito.exceptions.UserNotFoundException:
        cognito.admin_create_user(UserPoolId=pool_id, Username=username, MessageAction="SUPPRESS")
        created = True
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    return created


class SignInChallenge(Exception):
    """Cognito answered with a challenge (e.g. NEW_PASSWORD_REQUIRED) instead of tokens."""

    def __init__(self, name: str | None):
        super().__init__(name or "an unnamed challenge")
        self.name = name


def sign_in(cognito: Any, client_id: str, username: str, password: str) -> str:
    """An access token for the user (what `Authorization: Bearer` carries); SignInChallenge
    when Cognito asks for something else first."""
    result = cognito.initiate_auth(
        AuthFlow="USER_PASSWORD_AUTH", ClientId=client_id,
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )
    if "AuthenticationResult" not in result:
        raise SignInChallenge(result.get("ChallengeName"))
    return result["AuthenticationResult"]["AccessToken"]


def token_for(cognito: Any, pool_id: str, client_id: str, username: str,
              password: str | None = None) -> str:
    """A fresh access token for a user of the local pool, created on first use."""
    password = password or local_password(pool_id, username)
    try:
        return sign_in(cognito, client_id, username, password)
    except (cognito.exceptions.UserNotFoundException, cognito.exceptions.NotAuthorizedException):
        pass
    try:
        cognito.admin_get_user(UserPoolId=pool_id, Username=username)
    except cognito.exceptions.UserNotFoundException:
        ensure_user(cognito, pool_id, username, password)
        return sign_in(cognito, client_id, username, password)
    raise PermissionError(f"user {username!r} exists with another password "
                          "(for the demo user, set THUMBGEN_DEMO_PASSWORD as for `make run`)")


def local_pool(cognito: Any) -> tuple[str, str]:
    """The local stack's user pool and public app client, found by name."""
    from thumbgen.local.resources import APP_CLIENT, USER_POOL

    pools = [p for p in cognito.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == USER_POOL]
    if not pools:
        raise LookupError("the embedded AWS has no thumbgen user pool")
    pool_id = pools[-1]["Id"]
    clients = cognito.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
    client_id = next(c["ClientId"] for c in clients if c["ClientName"] == APP_CLIENT)
    return pool_id, client_id


def validity(token: str, now: float | None = None) -> str:
    """How long a token we were just handed stays valid, from its own `exp` ("1 h",
    "15 min"): the local pool's tokens last an hour (moto ignores the app client's
    validity), a deployed stage's 15 minutes."""
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    minutes = max(0, round((expires - (time.time() if now is None else now)) / 60))
    return f"{minutes // 60} h" if minutes and minutes % 60 == 0 else f"{minutes} min"

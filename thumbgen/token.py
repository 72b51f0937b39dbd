"""`thumbgen token [--user NAME]`: a fresh access token from the running local stack;
`thumbgen token --api-url URL --user NAME`: one from a deployed stage's user pool.

The stack is found as `make run` places it: the embedded AWS on 127.0.0.1:$AWS_PORT (4566)
and the API on 127.0.0.1:$API_PORT (8000). A stage is found from its API URL: its
`config.json` names the Cognito region, user pool and app client, as it does for the web
page, and the user signs in there with USER_PASSWORD_AUTH, a call Cognito takes unsigned:
no AWS credentials, profile or CLI. The token is printed alone on the last line.
"""
from __future__ import annotations

import getpass
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore
import botocore.session
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from thumbgen import users

PASSWORD_ENV = "THUMBGEN_PASSWORD"
CONFIG_TIMEOUT = 10
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class SignInError(Exception):
    """No token could be had from the local stack; the message says what to do."""


def local_api_url(env: Mapping[str, str] = os.environ) -> str:
    return f"http://127.0.0.1:{env.get('API_PORT', '8000')}"


def local_token(username: str = "demo", env: Mapping[str, str] = os.environ) -> str:
    """A fresh access token for a user of the local stack's pool (the demo user signs in
    with THUMBGEN_DEMO_PASSWORD when set, as `make run` does)."""
    from thumbgen.local.stack import local_client  # the local stage only: --api-url needs none of it

    aws_url = f"http://127.0.0.1:{env.get('AWS_PORT', '4566')}"
    api_url = local_api_url(env)
    try:
        requests.get(f"{api_url}/health", timeout=2).raise_for_status()
        cognito = local_client("cognito-idp", aws_url)
        pool_id, client_id = users.local_pool(cognito)
        password = env.get("THUMBGEN_DEMO_PASSWORD") if username == "demo" else None
        return users.token_for(cognito, pool_id, client_id, username, password)
    except (requests.RequestException, BotoCoreError, ClientError, LookupError) as exc:
        raise SignInError(f"no local stack at {api_url} / {aws_url} ({exc}); start it with `make run`") from exc
    except PermissionError as exc:
        raise SignInError(str(exc)) from exc


def print_token(username: str, fetch: Callable[[str], str] = local_token) -> int:
    try:
        token = fetch(username)
    except SignInError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"access token for {username} (valid {users.validity(token)}):", file=sys.stderr)
    print(token)
    return 0


@dataclass(frozen=True)
class StageCognito:
    """Where a stage's users sign in, as its `config.json` says."""
    region: str
    user_pool_id: str
    client_id: str
    endpoint: str | None = None  # only a loopback one (the local stack's); else the region's


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stage_cognito(api_url: str) -> StageCognito:
    """The Cognito settings of the stage whose API is at `api_url` (GET config.json)."""
    url = f"{api_url.rstrip('/')}/config.json"
    not_a_stage = (f"is {api_url} a thumbgen API URL? (the `API:` line of `make deploy`'s summary, "
                   "https://<api-id>.execute-api.<region>.amazonaws.com/api/)")
    try:
        response = requests.get(url, timeout=CONFIG_TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise SignInError(f"cannot reach {url} ({exc}); {not_a_stage}") from None
    if response.status_code != 200:
        raise SignInError(f"{url} answered {response.status_code}; {not_a_stage}")
    try:
        cognito = response.json()["cognito"]
        settings = cognito["region"], cognito["userPoolId"], cognito["clientId"]
    except (ValueError, KeyError, TypeError):
        settings = None
    if settings is None or not all(isinstance(v, str) and v for v in settings) or not REGION.match(settings[0]):
        raise SignInError(f"{url} names no Cognito region, user pool and app client; {not_a_stage}")
    endpoint = cognito.get("endpoint")
    return StageCognito(*settings, endpoint=endpoint if isinstance(endpoint, str) and _loopback(endpoint) else None)


def cognito_client(stage: StageCognito, env: Mapping[str, str] = os.environ) -> Any:
    """An unsigned cognito-idp client for the stage's region: InitiateAuth needs no AWS
    credentials, so none are looked for (nor a profile). The endpoint: AWS_ENDPOINT_URL_COGNITO_IDP
    or AWS_ENDPOINT_URL when set (as boto3 has it), else a loopback one from config.json
    (the local stack's), else the region's own."""
    endpoint = env.get("AWS_ENDPOINT_URL_COGNITO_IDP") or env.get("AWS_ENDPOINT_URL") or stage.endpoint
    no_profile = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    return boto3.session.Session(botocore_session=no_profile).client(
        "cognito-idp", region_name=stage.region, endpoint_url=endpoint or None,
        config=Config(signature_version=botocore.UNSIGNED, retries={"mode": "standard", "max_attempts": 3}),
    )


def stage_sign_in(stage: StageCognito, username: str, password: str,
                  env: Mapping[str, str] = os.environ) -> str:
    """The user's access token (what the API verifies), or SignInError saying what to do."""
    cognito = cognito_client(stage, env)
    try:
        return users.sign_in(cognito, stage.client_id, username, password)
    except ClientError as exc:
        code, message = exc.response["Error"].get("Code", ""), exc.response["Error"].get("Message", "")
        if code in ("NotAuthorizedException", "UserNotFoundException"):
            raise SignInError(f"Cognito refused {username!r}: {message} (check the user name and the password; "
                              f"only an administrator can reset it, see docs/deploy.md)") from None
        raise SignInError(f"Cognito at {cognito.meta.endpoint_url} refused the sign-in ({code}: {message})") from None
    except BotoCoreError as exc:
        raise SignInError(f"cannot reach Cognito at {cognito.meta.endpoint_url} ({exc})") from None
    except users.SignInChallenge as challenge:
        if challenge.name == "NEW_PASSWORD_REQUIRED":
            raise SignInError(f"{username!r} still has the temporary password it was created with, and Cognito "
                              f"hands out no token until it is replaced: {_set_password(stage, username)}") from None
        raise SignInError(f"Cognito asks {username!r} for {challenge.name or 'something else'}, which "
                          "`thumbgen token` cannot answer") from None


def _set_password(stage: StageCognito, username: str) -> str:
    return ("an administrator sets a permanent one with\n"
            f"  aws cognito-idp admin-set-user-password --region {stage.region} --user-pool-id "
            f"{stage.user_pool_id} --username {username} --password \"$PASSWORD\" --permanent\n"
            "(docs/deploy.md, \"A user and a token on AWS\")")


def stage_password(username: str, given: str | None, env: Mapping[str, str] = os.environ,
                   ask: Callable[[str], str] | None = None) -> str:
    """--password, else $THUMBGEN_PASSWORD, else asked for on the terminal (not echoed)."""
    password = given or env.get(PASSWORD_ENV)
    if not password:
        try:
            password = (ask or getpass.getpass)(f"password for {username}: ")
        except (EOFError, KeyboardInterrupt):
            password = ""
    if not password:
        raise SignInError(f"no password: give --password, set {PASSWORD_ENV}, or type it when asked")
    return password


def stage_token(api_url: str, username: str, password: str | None = None,
                env: Mapping[str, str] = os.environ, ask: Callable[[str], str] | None = None) -> str:
    """A fresh access token for a user of the stage whose API is at `api_url`."""
    stage = stage_cognito(api_url)
    return stage_sign_in(stage, username, stage_password(username, password, env, ask), env)

"""`thumbgen token [--user NAME]`: a fresh access token from the running local stack.

The stack is found as `make run` places it: the embedded AWS on 127.0.0.1:$AWS_PORT (4566)
and the API on 127.0.0.1:$API_PORT (8000). The token is printed alone on the last line.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

import requests
from botocore.exceptions import BotoCoreError, ClientError

from thumbgen import users
from thumbgen.local.stack import local_client


class SignInError(Exception):
    """No token could be had from the local stack; the message says what to do."""


def local_api_url(env: Mapping[str, str] = os.environ) -> str:
    return f"http://127.0.0.1:{env.get('API_PORT', '8000')}"


def local_token(username: str = "demo", env: Mapping[str, str] = os.environ) -> str:
    """A fresh access token for a user of the local stack's pool (the demo user signs in
    with THUMBGEN_DEMO_PASSWORD when set, as `make run` does)."""
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

"""`thumbgen token [--user NAME]`: a fresh access token from the running local stack.

The stack is found as `make run` places it: the embedded AWS on 127.0.0.1:$AWS_PORT (4566)
and the API on 127.0.0.1:$API_PORT (8000). The token is printed alone on the last line.
"""
from __future__ import annotations

import os
import sys

import requests
from botocore.exceptions import BotoCoreError, ClientError

from thumbgen import users
from thumbgen.stack import local_client


def print_token(username: str) -> int:
    aws_url = f"http://127.0.0.1:{os.environ.get('AWS_PORT', '4566')}"
    api_url = f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}"
    try:
        requests.get(f"{api_url}/health", timeout=2).raise_for_status()
        cognito = local_client("cognito-idp", aws_url)
        pool_id, client_id = users.local_pool(cognito)
        password = os.environ.get("THUMBGEN_DEMO_PASSWORD") if username == "demo" else None
        token = users.token_for(cognito, pool_id, client_id, username, password)
    except (requests.RequestException, BotoCoreError, ClientError, LookupError) as exc:
        print(f"error: no local stack at {api_url} / {aws_url} ({exc}); start it with `make run`",
              file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"access token for {username} (valid 1 h):", file=sys.stderr)
    print(token)
    return 0

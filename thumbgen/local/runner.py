"""`make run` / `thumbgen run`: start the local stack in the foreground until Ctrl-C."""
from __future__ import annotations

import logging
import os
import signal
import sys

import requests

from chalicelib.platform.config import ConfigError
from thumbgen.local.embedded_aws import wait_for_shutdown
from thumbgen.local.stack import DEMO_USER, LocalStack, StartFailed
from thumbgen.users import validity


def run_forever(aws_port: int | None = None, api_port: int | None = None) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # SIGTERM while starting stops like Ctrl-C (start() then stops what it started), so
    # the embedded AWS and the workers never outlive this process.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack = LocalStack(
            aws_port=aws_port or _port("AWS_PORT", 4566),
            api_port=api_port or _port("API_PORT", 8000),
            demo_password=os.environ.get("THUMBGEN_DEMO_PASSWORD") or None,
        )
        stack.start()
    except (StartFailed, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if stack.overridden:
        print(overrides_line(stack.overridden), flush=True)
    try:
        _serve(stack)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the stop short
        print("stopping…", flush=True)
        stack.stop()
    return 0


def overrides_line(names: list[str]) -> str:
    return (f"note: ignoring {', '.join(names)} from your environment: the local stack uses its own "
            "endpoints, credentials and resources")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _serve(stack: LocalStack) -> None:
    token = stack.demo_token()
    token_label = f"  token ({validity(token)}):".ljust(18)
    try:
        secret = stack.webhook_secret(token)
    except requests.RequestException as exc:  # e.g. a COGNITO_JWKS_URL of the environment refuses the token
        secret = f"unavailable ({exc})"
    print(f"thumbgen is running\n"
          f"  API:            {stack.api_url}\n"
          f"  embedded AWS:   {stack.aws_url} (S3, SQS, Cognito), {stack.tables_url} (DynamoDB + streams)\n"
          f"  demo user:      {DEMO_USER} / {stack.demo_password}\n"
          f"{token_label}{token}\n"
          f"  webhook secret: {secret} (the demo user's; GET /webhook-secret)\n"
          f"  another token:  .venv/bin/thumbgen token [--user NAME]\n"
          f"Ctrl-C to stop.", flush=True)
    wait_for_shutdown()


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name}={raw!r} is not valid: expected a TCP port number")
    return int(raw)

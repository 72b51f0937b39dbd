"""`make run` / `thumbgen run`: start the local stack in the foreground until Ctrl-C."""
from __future__ import annotations

import logging
import os
import sys

from thumbgen.embedded_aws import wait_for_shutdown
from thumbgen.stack import LocalStack, PortInUse, new_webhook_secret


def run_forever(aws_port: int | None = None, api_port: int | None = None) -> int:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stack = LocalStack(
        aws_port=aws_port or int(os.environ.get("AWS_PORT", "4566")),
        api_port=api_port or int(os.environ.get("API_PORT", "8000")),
        webhook_secret=os.environ.get("WEBHOOK_SECRET") or new_webhook_secret(),
        extra_env={k: os.environ[k] for k in ("WEBHOOK_RETRY_SCHEDULE", "MAX_UPLOAD_BYTES",
                                               "WEBHOOK_READ_TIMEOUT", "WEBHOOK_CONNECT_TIMEOUT")
                   if os.environ.get(k)},
    )
    try:
        stack.start()
    except PortInUse as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"thumbgen is running\n"
          f"  API:            {stack.api_url}\n"
          f"  embedded AWS:   {stack.aws_url} (S3, DynamoDB + streams, SQS)\n"
          f"  WEBHOOK_SECRET={stack.webhook_secret}\n"
          f"Ctrl-C to stop.", flush=True)
    try:
        wait_for_shutdown()
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return 0
